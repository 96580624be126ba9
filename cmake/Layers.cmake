# moegrad_layer(NAME DIR DEPS...): a static library from every .cpp under DIR (and, with the
# CUDA backend, every .cu). New files join their layer without editing CMake.
function(moegrad_layer name dir)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${dir}/*.cpp)
  if(MOEGRAD_WITH_CUDA)
    file(GLOB_RECURSE cu_srcs CONFIGURE_DEPENDS ${dir}/*.cu)
    list(APPEND srcs ${cu_srcs})
  else()
    # Host files that only make sense with the CUDA runtime live under cuda/.
    list(FILTER srcs EXCLUDE REGEX "/cuda/")
  endif()
  if(NOT srcs)
    # A layer whose code has not landed yet: a target others can already depend on.
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARGN})
    return()
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARGN})
  if(MOEGRAD_WITH_CUDA)
    target_compile_definitions(${name} PUBLIC MOEGRAD_WITH_CUDA)
    set_target_properties(${name} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
    target_compile_options(${name} PRIVATE
      $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr --extended-lambda -O3>)
  endif()
endfunction()
