// Tensor: a strided view (shape, strides, offset, dtype) of shared storage on one device.
// Tensors have no autograd state; autograd/variable.h wraps them for differentiation.
#pragma once
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "core/storage.h"

namespace moegrad {

class Tensor {
 public:
  Tensor() = default;  // undefined: holds no storage
  Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }  // in elements
  int64_t dim() const { return int64_t(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t offset() const { return offset_; }  // in elements, into the storage
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const;
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  // True when both tensors view the same storage (used to tell a view from a copy).
  bool shares_storage(const Tensor& other) const { return storage_ == other.storage_; }

  void* data_ptr() const;
  template <typename T>
  T* data() const {
    MOEGRAD_CHECK(dtype_v<T> == dtype_, "data<", dtype_name(dtype_v<T>), ">(): tensor is ",
                  dtype_name(dtype_));
    return static_cast<T*>(data_ptr());
  }

  // Views: share storage, never copy.
  Tensor view(Shape shape) const;  // one entry may be -1; throws if strides do not allow it
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops `dim`
  Tensor expand(Shape shape) const;                 // -1 keeps a size; new dims go in front
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor as_strided(Shape shape, Shape strides, int64_t offset) const;

  // Copies when needed.
  Tensor reshape(Shape shape) const;  // a view when possible, else a contiguous copy
  Tensor contiguous() const;          // this tensor when already contiguous
  Tensor clone() const;               // always a fresh contiguous copy
  Tensor to(DType dtype) const;       // this tensor when the dtype already matches
  Tensor to(Device device) const;     // this tensor when already on `device`

  // In place: write into the viewed elements (a Tensor is a handle, so these are const).
  const Tensor& copy_(const Tensor& src) const;  // src broadcast to this shape; dtype converted
  const Tensor& fill_(double value) const;
  const Tensor& zero_() const { return fill_(0.0); }

  // Host access (copies from the device when needed).
  template <typename T>
  std::vector<T> to_vector() const;
  double item() const;  // the single element, as double

  std::string str() const;  // shape, dtype, device and the values (summarised when large)

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::F32;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Factories.
Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
            Device device = Device::cpu());
Tensor empty_like(const Tensor& t);
// Like empty_like, but dense in the order of t's strides (the largest first): a result that
// views back the way its input came without a copy (a [B, T, H, D] tensor seen as [B, H, T, D]
// gives a result laid out as [B, T, H, D]). Contiguous where t broadcasts (a stride of 0).
Tensor empty_like_layout(const Tensor& t);
// t's first `count` dims in memory order: the largest stride first, dims of equal stride (those
// of size 1, say) in their own order. Loops that walk them so visit memory in sequence.
std::vector<int64_t> dims_outermost_first(const Tensor& t, int64_t count);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor scalar_tensor(double value, DType dtype = DType::F32, Device device = Device::cpu());
// start, start+step, ... < end.
Tensor arange(int64_t start, int64_t end, int64_t step = 1, DType dtype = DType::I64,
              Device device = Device::cpu());
inline Tensor arange(int64_t end, DType dtype = DType::I64, Device device = Device::cpu()) {
  return arange(0, end, 1, dtype, device);
}
// Copies host values into a new tensor of `shape` (numel must match).
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                   Device device = Device::cpu());

// Throws "op: expected tensors on the same device, got cpu and cuda:0".
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_defined(const char* op, const Tensor& t, const char* what);

}  // namespace moegrad
