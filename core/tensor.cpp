#include "core/tensor.h"

#include <algorithm>
#include <cstring>

#include "core/ops/copy.h"

#ifdef MOEGRAD_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace moegrad {

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset,
               DType dtype)
    : storage_(std::move(storage)),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      offset_(offset),
      dtype_(dtype) {
  MOEGRAD_CHECK(shape_.size() == strides_.size(), "Tensor: shape ", shape_str(shape_),
                " and strides ", shape_str(strides_), " differ in rank");
  for (int64_t s : shape_) MOEGRAD_CHECK(s >= 0, "Tensor: negative size in shape ", shape_str(shape_));
}

int64_t Tensor::size(int64_t d) const { return shape_[normalize_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides_[normalize_dim(d, dim(), "stride")]; }
Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape_[d] == 1) continue;
    if (strides_[d] != expected) return false;
    expected *= shape_[d];
  }
  return true;
}

void* Tensor::data_ptr() const {
  if (!storage_ || !storage_->data()) return nullptr;
  return static_cast<char*>(storage_->data()) + offset_ * int64_t(dtype_size(dtype_));
}

namespace {

// Resolves one -1 entry from the element count.
Shape infer_shape(Shape shape, int64_t numel, const char* op) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      MOEGRAD_CHECK(infer < 0, op, ": only one dimension can be -1 in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      MOEGRAD_CHECK(shape[i] >= 0, op, ": invalid size in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    MOEGRAD_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(shape),
                  " is invalid for ", numel, " elements");
    shape[infer] = numel / known;
  }
  MOEGRAD_CHECK(shape_numel(shape) == numel, op, ": shape ", shape_str(shape),
                " is invalid for ", numel, " elements");
  return shape;
}

// Strides that let `new_shape` view memory laid out as (old_shape, old_strides), or an
// empty result when only a copy can produce it. Splits and merges of dims are allowed as
// long as each merged group is itself contiguous.
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape,
                  Shape& out) {
  out.assign(new_shape.size(), 0);
  if (shape_numel(old_shape) == 0 || old_shape.empty()) {
    out = contiguous_strides(new_shape);
    return true;
  }
  int64_t view_d = int64_t(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = int64_t(old_shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= old_shape[td];
    if (td == 0 ||
        (old_shape[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = old_strides[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

}  // namespace

Tensor Tensor::view(Shape shape) const {
  check_defined("view", *this, "input");
  shape = infer_shape(std::move(shape), numel(), "view");
  Shape st;
  MOEGRAD_CHECK(view_strides(shape_, strides_, shape, st), "view: cannot view a tensor of shape ",
                shape_str(shape_), " and strides ", shape_str(strides_), " as ", shape_str(shape),
                " without a copy; use reshape");
  return Tensor(storage_, std::move(shape), std::move(st), offset_, dtype_);
}

Tensor Tensor::reshape(Shape shape) const {
  check_defined("reshape", *this, "input");
  shape = infer_shape(std::move(shape), numel(), "reshape");
  Shape st;
  if (view_strides(shape_, strides_, shape, st))
    return Tensor(storage_, std::move(shape), std::move(st), offset_, dtype_);
  return contiguous().view(shape);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  d0 = normalize_dim(d0, dim(), "transpose");
  d1 = normalize_dim(d1, dim(), "transpose");
  Shape sh = shape_, st = strides_;
  std::swap(sh[d0], sh[d1]);
  std::swap(st[d0], st[d1]);
  return Tensor(storage_, std::move(sh), std::move(st), offset_, dtype_);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  MOEGRAD_CHECK(int64_t(dims.size()) == dim(), "permute: got ", dims.size(),
                " dims for a tensor of shape ", shape_str(shape_));
  Shape sh(dims.size()), st(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = normalize_dim(dims[i], dim(), "permute");
    MOEGRAD_CHECK(!seen[d], "permute: dim ", d, " repeated in ", shape_str(dims));
    seen[d] = true;
    sh[i] = shape_[d];
    st[i] = strides_[d];
  }
  return Tensor(storage_, std::move(sh), std::move(st), offset_, dtype_);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = normalize_dim(d, dim(), "narrow");
  if (start < 0) start += shape_[d];
  MOEGRAD_CHECK(start >= 0 && length >= 0 && start + length <= shape_[d], "narrow: range [",
                start, ", ", start + length, ") out of bounds for dim ", d, " of shape ",
                shape_str(shape_));
  Shape sh = shape_;
  sh[d] = length;
  return Tensor(storage_, std::move(sh), strides_, offset_ + start * strides_[d], dtype_);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = normalize_dim(d, dim(), "select");
  if (index < 0) index += shape_[d];
  MOEGRAD_CHECK(index >= 0 && index < shape_[d], "select: index ", index,
                " out of bounds for dim ", d, " of shape ", shape_str(shape_));
  Shape sh = shape_, st = strides_;
  sh.erase(sh.begin() + d);
  st.erase(st.begin() + d);
  return Tensor(storage_, std::move(sh), std::move(st), offset_ + index * strides_[d], dtype_);
}

Tensor Tensor::expand(Shape shape) const {
  MOEGRAD_CHECK(shape.size() >= shape_.size(), "expand: cannot expand shape ", shape_str(shape_),
                " to fewer dims ", shape_str(shape));
  size_t lead = shape.size() - shape_.size();
  Shape st(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      MOEGRAD_CHECK(shape[i] >= 0, "expand: size -1 not allowed for a new leading dim in ",
                    shape_str(shape));
      continue;
    }
    int64_t old = shape_[i - lead];
    if (shape[i] == -1) shape[i] = old;
    if (old == shape[i]) {
      st[i] = strides_[i - lead];
    } else {
      MOEGRAD_CHECK(old == 1, "expand: cannot expand shape ", shape_str(shape_), " to ",
                    shape_str(shape));
    }
  }
  return Tensor(storage_, std::move(shape), std::move(st), offset_, dtype_);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = normalize_dim(d, dim() + 1, "unsqueeze");
  Shape sh = shape_, st = strides_;
  int64_t s = d < dim() ? strides_[d] * shape_[d] : 1;
  sh.insert(sh.begin() + d, 1);
  st.insert(st.begin() + d, s);
  return Tensor(storage_, std::move(sh), std::move(st), offset_, dtype_);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = normalize_dim(d, dim(), "squeeze");
  MOEGRAD_CHECK(shape_[d] == 1, "squeeze: dim ", d, " of shape ", shape_str(shape_),
                " is not of size 1");
  Shape sh = shape_, st = strides_;
  sh.erase(sh.begin() + d);
  st.erase(st.begin() + d);
  return Tensor(storage_, std::move(sh), std::move(st), offset_, dtype_);
}

Tensor Tensor::as_strided(Shape shape, Shape strides, int64_t offset) const {
  return Tensor(storage_, std::move(shape), std::move(strides), offset, dtype_);
}

Tensor Tensor::contiguous() const {
  check_defined("contiguous", *this, "input");
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::clone() const {
  check_defined("clone", *this, "input");
  Tensor out = empty(shape_, dtype_, device());
  copy_into(out, *this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  check_defined("to", *this, "input");
  if (dtype == dtype_) return *this;
  Tensor out = empty(shape_, dtype, device());
  copy_into(out, *this);
  return out;
}

Tensor Tensor::to(Device device) const {
  check_defined("to", *this, "input");
  if (device == this->device()) return *this;
#ifdef MOEGRAD_WITH_CUDA
  Tensor src = contiguous();
  Tensor out = empty(shape_, dtype_, device);
  cuda::copy_bytes(out.data_ptr(), device, src.data_ptr(), src.device(),
                   size_t(numel()) * dtype_size(dtype_));
  return out;
#else
  throw Error("to: cannot move a tensor to " + device.str() + ": moegrad was built without CUDA");
#endif
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  check_defined("copy_", src, "source");
  Tensor s = src.device() == device() ? src : src.to(device());
  copy_into(*this, s.shape() == shape_ ? s : s.expand(shape_));
  return *this;
}

const Tensor& Tensor::fill_(double value) const {
  fill_into(*this, value);
  return *this;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  check_defined("to_vector", *this, "input");
  Tensor host = to(Device::cpu()).to(dtype_v<T>).contiguous();
  const T* p = static_cast<const T*>(host.data_ptr());
  return std::vector<T>(p, p + numel());
}

double Tensor::item() const {
  MOEGRAD_CHECK(numel() == 1, "item: expected a tensor with one element, got shape ",
                shape_str(shape_));
  return to_vector<double>()[0];
}

template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

// ---- factories ----

Tensor empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) MOEGRAD_CHECK(s >= 0, "empty: negative size in shape ", shape_str(shape));
  auto storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

std::vector<int64_t> dims_outermost_first(const Tensor& t, int64_t count) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  for (int64_t d = 0; d < count; ++d) order[size_t(d)] = d;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return t.stride(a) > t.stride(b); });
  return order;
}

Tensor empty_like_layout(const Tensor& t) {
  const int64_t n = t.dim();
  for (int64_t d = 0; d < n; ++d)
    if (t.stride(d) == 0 && t.size(d) > 1) return empty_like(t);
  const std::vector<int64_t> order = dims_outermost_first(t, n);
  Shape dense_shape;
  std::vector<int64_t> back(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    dense_shape.push_back(t.size(order[size_t(i)]));
    back[size_t(order[size_t(i)])] = i;
  }
  return empty(dense_shape, t.dtype(), t.device()).permute(back);
}
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(int64_t start, int64_t end, int64_t step, DType dtype, Device device) {
  MOEGRAD_CHECK(step != 0, "arange: step must be non-zero");
  int64_t n = std::max<int64_t>(0, (end - start + step - (step > 0 ? 1 : -1)) / step);
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = double(start + i * step);
  return from_vector<double>(v, {n}, device).to(dtype);
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  MOEGRAD_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape));
  Tensor host = empty(shape, dtype_v<T>, Device::cpu());
  if (!values.empty()) std::memcpy(host.data_ptr(), values.data(), values.size() * sizeof(T));
  return host.to(device);
}

template Tensor from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);
template Tensor from_vector<bf16>(const std::vector<bf16>&, const Shape&, Device);
template Tensor from_vector<f16>(const std::vector<f16>&, const Shape&, Device);

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  MOEGRAD_CHECK(a.device() == b.device(), op, ": expected tensors on the same device, got ",
                a.device().str(), " and ", b.device().str());
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  MOEGRAD_CHECK(a.dtype() == b.dtype(), op, ": expected tensors of the same dtype, got ",
                dtype_name(a.dtype()), " ", shape_str(a.shape()), " and ", dtype_name(b.dtype()),
                " ", shape_str(b.shape()));
}

void check_defined(const char* op, const Tensor& t, const char* what) {
  MOEGRAD_CHECK(t.defined(), op, ": ", what, " tensor is undefined");
}

}  // namespace moegrad
