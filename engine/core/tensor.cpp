#include "engine/core/tensor.h"

#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/random.h"
#include "kernels/elementwise.h"
#include "kernels/philox.h"

#if defined(HONE_WITH_CUDA)
#include "engine/core/cuda_runtime.h"
#endif

namespace hone {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
    st[d] = acc;
    acc *= s[d];
  }
  return st;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* what) {
  const int64_t n = ndim == 0 ? 1 : ndim;
  if (dim < -n || dim >= n)
    throw std::out_of_range(std::string(what) + ": dimension " + std::to_string(dim) +
                            " is out of range for a tensor with " + std::to_string(ndim) + " dims");
  return dim < 0 ? dim + n : dim;
}

// ---- creation ------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument("Tensor::empty: negative size in " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(shape_numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(0.0);
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw std::invalid_argument("Tensor::from_vector: " + std::to_string(values.size()) +
                                " values do not fill shape " + shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>());
  std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector<int32_t>(const std::vector<int32_t>&, const Shape&);
template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);
template Tensor Tensor::from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&);
template Tensor Tensor::from_vector<bf16>(const std::vector<bf16>&, const Shape&);
template Tensor Tensor::from_vector<f16>(const std::vector<f16>&, const Shape&);

Tensor Tensor::arange(int64_t n, DType dtype) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(i);
  return from_vector(v, {n}).to(dtype);
}

Tensor Tensor::randn(const Shape& shape, uint64_t seed, DType dtype) {
  const int64_t n = shape_numel(shape);
  std::vector<double> v(n);
  // Box-Muller on pairs of Philox uniforms: element i uses uniforms 2i and 2i+1.
  for (int64_t i = 0; i < n; ++i) {
    double u1 = philox::uniform(seed, 0, 2 * i);
    const double u2 = philox::uniform(seed, 0, 2 * i + 1);
    if (u1 < 1e-12) u1 = 1e-12;
    v[i] = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  return from_vector(v, shape).to(dtype);
}

Tensor Tensor::rand(const Shape& shape, uint64_t seed, double lo, double hi, DType dtype) {
  const int64_t n = shape_numel(shape);
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * philox::uniform(seed, 0, i);
  return from_vector(v, shape).to(dtype);
}

Tensor Tensor::make_view(std::shared_ptr<Storage> storage, int64_t offset, Shape shape,
                         Shape strides, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// ---- metadata ------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] == 1) continue;
    if (strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(dtype());
}

template <class T> T* Tensor::data() const {
  if (dtype_of<T>() != dtype())
    throw std::invalid_argument(std::string("Tensor::data: tensor is ") + dtype_name(dtype()) +
                                ", not " + dtype_name(dtype_of<T>()));
  return static_cast<T*>(data_ptr());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template bf16* Tensor::data<bf16>() const;
template f16* Tensor::data<f16>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;

double Tensor::item() const {
  if (numel() != 1)
    throw std::invalid_argument("item(): tensor " + str() + " does not hold exactly one value");
  return to_vector<double>()[0];
}

template <class T> std::vector<T> Tensor::to_vector() const {
  Tensor c = detach().to(Device::cpu()).to(dtype_of<T>()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

Tensor Tensor::detach() const {
  return make_view(impl_->storage, impl_->offset, impl_->shape, impl_->strides, impl_->dtype);
}

void Tensor::set_data_(const Tensor& src) {
  if (!is_leaf()) throw std::invalid_argument("set_data_: only leaf tensors can change their data, got " + str());
  if (src.dtype() != dtype() && requires_grad() && !is_floating(src.dtype()))
    throw std::invalid_argument("set_data_: a tensor that requires grad must stay floating, got " + src.str());
  // A parameter stays one: its new storage is marked too (autocast keeps its copy there).
  if (impl_->storage && impl_->storage->is_parameter()) src.impl_->storage->mark_parameter();
  impl_->storage = src.impl_->storage;
  impl_->offset = src.impl_->offset;
  impl_->shape = src.impl_->shape;
  impl_->strides = src.impl_->strides;
  impl_->dtype = src.impl_->dtype;
  impl_->grad.reset();
}

Tensor& Tensor::requires_grad_(bool value) {
  if (value && !is_floating(dtype()))
    throw std::invalid_argument("requires_grad: only floating tensors can require gradients, got " + str());
  if (!is_leaf())
    throw std::invalid_argument("requires_grad_: only leaf tensors can change requires_grad");
  impl_->requires_grad = value;
  return *this;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  Tensor g = gradient;
  if (!g.defined()) {
    if (numel() != 1)
      throw std::invalid_argument("backward: " + str() +
                                  " is not a scalar; pass the gradient of the output explicitly");
    g = Tensor::ones(shape(), dtype(), device());
  } else if (g.shape() != shape()) {
    throw std::invalid_argument("backward: gradient shape " + shape_str(g.shape()) +
                                " does not match the tensor's " + shape_str(shape()));
  }
  run_backward({*this}, {g}, retain_graph);
}

// ---- in place --------------------------------------------------------------------------------

namespace {

void check_inplace_allowed(const Tensor& t, const char* what) {
  if (grad_mode_enabled() && t.requires_grad())
    throw std::runtime_error(std::string(what) + ": in-place write to " + t.str() +
                             ", which requires grad, while grad mode is on (wrap the update in a "
                             "NoGradGuard)");
}

}  // namespace

Tensor& Tensor::fill_(double value) {
  check_inplace_allowed(*this, "fill_");
  if (device().is_cpu()) {
    kernels::fill_strided(static_cast<int>(dtype()), static_cast<int>(dim()), shape().data(),
                          data_ptr(), strides().data(), value);
  } else {
#if defined(HONE_WITH_CUDA)
    kernels::cuda::fill_strided(static_cast<int>(dtype()), static_cast<int>(dim()), shape().data(), data_ptr(),
                                strides().data(), value, cuda::stream(device()));
#else
    throw std::runtime_error("fill_: this build has no CUDA support");
#endif
  }
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src_in) {
  check_inplace_allowed(*this, "copy_");
  Tensor src = src_in.expand(shape());
  if (device().is_cpu() && src.device().is_cpu()) {
    kernels::copy_strided(static_cast<int>(src.dtype()), static_cast<int>(dtype()),
                          static_cast<int>(dim()), shape().data(), src.data_ptr(),
                          src.strides().data(), data_ptr(), strides().data());
    bump_version();
    return *this;
  }
#if defined(HONE_WITH_CUDA)
  if (device().is_cuda() && src.device() == device()) {
    // On one device: a plain memcpy when nothing changes, else one strided kernel that converts
    // the dtype and re-lays out (broadcast, transposed or narrowed views) in a single pass.
    const cudaStream_t stream = cuda::stream(device());
    if (src.dtype() == dtype() && is_contiguous() && src.is_contiguous()) {
      cuda::check(cudaMemcpyAsync(data_ptr(), src.data_ptr(), nbytes(), cudaMemcpyDeviceToDevice, stream),
                  "cudaMemcpyAsync (copy_, device to device)");
    } else {
      kernels::cuda::copy_strided(static_cast<int>(src.dtype()), static_cast<int>(dtype()), static_cast<int>(dim()),
                                  shape().data(), src.data_ptr(), src.strides().data(), data_ptr(),
                                  strides().data(), stream);
    }
  } else if (device().is_cuda()) {
    // From the CPU (or another device, through the CPU): a dense host copy in this dtype goes up
    // in one transfer, straight into this view when it is contiguous, else into a dense device
    // buffer that a strided kernel spreads into the view. The transfer goes through the page-locked
    // upload ring (kernels/cuda_api.h, upload_async): the host neither waits for the device nor
    // has to keep its copy.
    Tensor host = src.device().is_cpu() ? src.detach() : src.detach().to(Device::cpu());
    host = host.to(dtype()).contiguous();
    const cudaStream_t stream = cuda::stream(device());
    Tensor dense = is_contiguous() ? *this : Tensor::empty(shape(), dtype(), device());
    kernels::cuda::upload_async(dense.data_ptr(), host.data_ptr(), nbytes(), stream);
    if (!dense.same(*this))
      kernels::cuda::copy_strided(static_cast<int>(dtype()), static_cast<int>(dtype()), static_cast<int>(dim()),
                                  shape().data(), dense.data_ptr(), dense.strides().data(), data_ptr(),
                                  strides().data(), stream);
  } else {
    // To the CPU: make the source dense on its device (same dtype), bring it down, and let the
    // CPU copy convert and re-lay out. This is a synchronisation point: deferred device errors
    // (out-of-range indices) are reported here.
    const Tensor dense = src.detach().contiguous();
    Tensor host = Tensor::empty(dense.shape(), dense.dtype());
    const int dev = src.device().index;
    cuda::check(cudaMemcpyAsync(host.data_ptr(), dense.data_ptr(), host.nbytes(), cudaMemcpyDeviceToHost,
                                cuda::stream(dev)),
                "cudaMemcpyAsync (copy_, device to host)");
    cuda::synchronize(dev);
    return copy_(host);
  }
  bump_version();
  return *this;
#else
  throw std::runtime_error("copy_: this build has no CUDA support");
#endif
}

// ---- conversion --------------------------------------------------------------------------

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = Tensor::empty(shape(), dtype(), target);
  {
    NoGradGuard no_grad;
    out.copy_(*this);
  }
  if (needs_grad({this})) {
    const Device from = device();
    record("ToDeviceBackward", out, {*this},
           [from](const Tensor& g) -> std::vector<Tensor> { return {g.to(from)}; });
  }
  return out;
}

// ---- devices ----------------------------------------------------------------------------------

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    try {
      return cuda(std::stoi(text.substr(5)));
    } catch (...) {
    }
  }
  throw std::invalid_argument("unknown device '" + text + "' (expected cpu, cuda or cuda:N)");
}

std::string device_name(const Device& device) {
  if (device.is_cpu()) return "cpu";
#if defined(HONE_WITH_CUDA)
  cudaDeviceProp prop{};
  cuda::check(cudaGetDeviceProperties(&prop, device.index), "cudaGetDeviceProperties");
  return prop.name;
#else
  throw std::runtime_error(device.str() + ": this hone build has no CUDA support");
#endif
}

bool cuda_available() { return cuda_device_count() > 0; }

void set_allow_tf32(bool on) {
#if defined(HONE_WITH_CUDA)
  kernels::cuda::set_tf32(on);
#else
  (void)on;
#endif
}

bool allow_tf32() {
#if defined(HONE_WITH_CUDA)
  return kernels::cuda::tf32_enabled();
#else
  return false;
#endif
}

int cuda_device_count() {
#if defined(HONE_WITH_CUDA)
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) {
  default_generator().seed = seed;
  default_generator().offset = 0;
}

}  // namespace hone
