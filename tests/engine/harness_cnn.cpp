// Harness entries for the convolutional-network ops: conv2d (odd shapes, strides, padding,
// dilation, groups, depthwise, bias), max/avg/adaptive pooling, batch_norm (train and eval,
// with and without affine parameters), subsample2d, pad_channels and both upsamplings. The
// references are the definitions written as plain float64 loops; plus the ops' argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "engine/ops/ops.h"
#include "op_harness.h"
#include "scoped_env.h"

namespace hone::test {

namespace {

std::string dims(std::initializer_list<int64_t> v) {
  std::string s;
  for (int64_t x : v) {
    if (!s.empty()) s += 'x';
    s += std::to_string(x);
  }
  return s;
}

// ---- conv2d -------------------------------------------------------------------------------------

struct ConvSpec {
  int64_t N, Ci, H, W, Co, kh, kw;
  ops::Conv2dArgs a;
  bool bias;
};

Tensor conv_ref(const Tensor& x, const Tensor& w, const Tensor& b, const ConvSpec& s) {
  const std::vector<double> xv = values(x), wv = values(w);
  const std::vector<double> bv = b.defined() ? values(b) : std::vector<double>(s.Co, 0.0);
  const ops::Conv2dArgs& a = s.a;
  const int64_t Ho = (s.H + 2 * a.pad_h - a.dilation_h * (s.kh - 1) - 1) / a.stride_h + 1;
  const int64_t Wo = (s.W + 2 * a.pad_w - a.dilation_w * (s.kw - 1) - 1) / a.stride_w + 1;
  const int64_t Cig = s.Ci / a.groups, Cog = s.Co / a.groups;
  std::vector<double> out(s.N * s.Co * Ho * Wo);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t co = 0; co < s.Co; ++co)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = bv[co];
          for (int64_t c = 0; c < Cig; ++c)
            for (int64_t i = 0; i < s.kh; ++i)
              for (int64_t j = 0; j < s.kw; ++j) {
                const int64_t ih = oh * a.stride_h - a.pad_h + i * a.dilation_h;
                const int64_t iw = ow * a.stride_w - a.pad_w + j * a.dilation_w;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const int64_t ci = co / Cog * Cig + c;
                acc += xv[((n * s.Ci + ci) * s.H + ih) * s.W + iw] * wv[((co * Cig + c) * s.kh + i) * s.kw + j];
              }
          out[((n * s.Co + co) * Ho + oh) * Wo + ow] = acc;
        }
  return from_values(out, {s.N, s.Co, Ho, Wo});
}

void add_conv_cases(std::vector<OpCase>& cases) {
  auto args = [](int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t g) {
    ops::Conv2dArgs a;
    a.stride_h = sh, a.stride_w = sw, a.pad_h = ph, a.pad_w = pw, a.dilation_h = dh, a.dilation_w = dw, a.groups = g;
    return a;
  };
  const ConvSpec specs[] = {
      {1, 1, 5, 5, 1, 3, 3, args(1, 1, 1, 1, 1, 1, 1), true},
      {2, 3, 7, 7, 5, 3, 3, args(1, 1, 1, 1, 1, 1, 1), true},
      {2, 3, 8, 8, 5, 3, 3, args(2, 2, 1, 1, 1, 1, 1), false},
      {2, 3, 7, 8, 5, 3, 3, args(2, 1, 1, 0, 1, 1, 1), true},    // non-square stride and padding
      {1, 3, 7, 8, 5, 5, 3, args(1, 1, 2, 1, 1, 1, 1), true},    // 5x3 kernel
      {2, 3, 8, 7, 5, 3, 3, args(1, 1, 2, 2, 2, 2, 1), true},    // dilation 2
      {2, 4, 7, 7, 4, 3, 3, args(1, 2, 1, 1, 1, 1, 2), true},    // groups 2
      {2, 4, 8, 8, 6, 3, 3, args(2, 2, 2, 2, 2, 2, 2), false},   // groups 2, stride 2, dilation 2
      {2, 4, 7, 7, 4, 3, 3, args(1, 1, 1, 1, 1, 1, 4), true},    // depthwise
      {1, 3, 5, 5, 6, 3, 3, args(2, 2, 1, 1, 1, 1, 3), true},    // depthwise, multiplier 2
      {2, 4, 5, 5, 5, 1, 1, args(1, 1, 0, 0, 1, 1, 1), true},    // 1x1 (2 images per chunk)
      {1, 3, 5, 7, 5, 1, 1, args(1, 1, 0, 0, 1, 1, 1), false},   // 1x1 of one image: a plain GEMM
      {2, 3, 16, 32, 4, 1, 1, args(1, 1, 0, 0, 1, 1, 1), true},  // 1x1 plain GEMM, 2 chunks
      {2, 4, 8, 8, 5, 1, 1, args(2, 2, 0, 0, 1, 1, 1), false},   // 1x1 stride 2 (ResNet shortcut)
      {2, 4, 8, 8, 5, 1, 1, args(1, 1, 1, 1, 1, 1, 1), true},    // 1x1 padded
      {2, 3, 1, 1, 5, 1, 1, args(1, 1, 0, 0, 1, 1, 1), true},    // 1x1 image
      {2, 3, 1, 1, 5, 3, 3, args(1, 1, 1, 1, 1, 1, 1), true},    // 3x3 on a 1x1 image
      {1, 3, 8, 8, 4, 7, 7, args(2, 2, 3, 3, 1, 1, 1), false},   // ResNet stem, small
      {9, 2, 8, 8, 3, 3, 3, args(1, 1, 1, 1, 1, 1, 1), true},    // several images per chunk, 2 chunks
      {2, 2, 24, 24, 3, 3, 3, args(1, 1, 1, 1, 1, 1, 1), true},  // one image per chunk, 2 chunks
      {2, 1, 5, 1, 1, 3, 1, args(1, 1, 1, 0, 1, 1, 1), true},    // W = 1
      // Channel counts multiples of 8: with HONE_CUDNN_NHWC=1 bf16/f16 convolutions take cuDNN's NHWC path
      // (conv_cudnn.cpp; the hone_engine_tests_cudnn_nhwc run of tests/CMakeLists.txt).
      {2, 8, 6, 5, 16, 3, 3, args(1, 1, 1, 1, 1, 1, 1), true},
      {2, 16, 7, 7, 8, 3, 3, args(2, 2, 1, 1, 1, 1, 1), false},  // stride 2
      {2, 8, 6, 6, 16, 1, 1, args(2, 2, 0, 0, 1, 1, 1), false},  // 1x1 stride 2 (ResNet shortcut)
  };
  for (const ConvSpec& s : specs) {
    const ops::Conv2dArgs& a = s.a;
    OpCase c;
    c.name = "cnn/conv2d/x" + dims({s.N, s.Ci, s.H, s.W}) + "/w" + dims({s.Co, s.Ci / a.groups, s.kh, s.kw}) + "/s" +
             dims({a.stride_h, a.stride_w}) + "/p" + dims({a.pad_h, a.pad_w}) + "/d" + dims({a.dilation_h, a.dilation_w}) +
             "/g" + std::to_string(a.groups) + (s.bias ? "/bias" : "");
    c.inputs = {InputSpec::floats({s.N, s.Ci, s.H, s.W}), InputSpec::floats({s.Co, s.Ci / a.groups, s.kh, s.kw}, -1, 1)};
    if (s.bias) c.inputs.push_back(InputSpec::floats({s.Co}));
    c.forward = [s](const std::vector<Tensor>& in) {
      return ops::conv2d(in[0], in[1], s.bias ? in[2] : Tensor(), s.a);
    };
    c.reference = [s](const std::vector<Tensor>& in) { return conv_ref(in[0], in[1], s.bias ? in[2] : Tensor(), s); };
    cases.push_back(c);
  }
}

// ---- pooling --------------------------------------------------------------------------------------

enum class PoolKind { Max, Avg };

Tensor pool_ref(const Tensor& x, const ops::Pool2dArgs& a, PoolKind kind) {
  const std::vector<double> v = values(x);
  const int64_t H = x.size(-2), W = x.size(-1), planes = x.numel() / (H * W);
  const int64_t Ho = (H + 2 * a.pad_h - a.kernel_h) / a.stride_h + 1;
  const int64_t Wo = (W + 2 * a.pad_w - a.kernel_w) / a.stride_w + 1;
  std::vector<double> out;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        double m = -std::numeric_limits<double>::infinity(), s = 0;
        for (int64_t i = 0; i < a.kernel_h; ++i)
          for (int64_t j = 0; j < a.kernel_w; ++j) {
            const int64_t ih = oh * a.stride_h - a.pad_h + i, iw = ow * a.stride_w - a.pad_w + j;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;  // padding: -inf for max, 0 for avg
            m = std::max(m, v[(p * H + ih) * W + iw]);
            s += v[(p * H + ih) * W + iw];
          }
        // count_include_pad: every window lies inside the padded input in floor mode.
        out.push_back(kind == PoolKind::Max ? m : s / double(a.kernel_h * a.kernel_w));
      }
  Shape shape = x.shape();
  shape[shape.size() - 2] = Ho;
  shape[shape.size() - 1] = Wo;
  return from_values(out, shape);
}

Tensor adaptive_ref(const Tensor& x, int64_t Ho, int64_t Wo) {
  const std::vector<double> v = values(x);
  const int64_t H = x.size(-2), W = x.size(-1), planes = x.numel() / (H * W);
  std::vector<double> out;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t h0 = int64_t(std::floor(double(oh * H) / Ho)), h1 = int64_t(std::ceil(double((oh + 1) * H) / Ho));
        const int64_t w0 = int64_t(std::floor(double(ow * W) / Wo)), w1 = int64_t(std::ceil(double((ow + 1) * W) / Wo));
        double s = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += v[(p * H + ih) * W + iw];
        out.push_back(s / double((h1 - h0) * (w1 - w0)));
      }
  Shape shape = x.shape();
  shape[shape.size() - 2] = Ho;
  shape[shape.size() - 1] = Wo;
  return from_values(out, shape);
}

void add_pool_cases(std::vector<OpCase>& cases) {
  struct Spec {
    Shape shape;
    ops::Pool2dArgs a;
  };
  auto pa = [](int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
    ops::Pool2dArgs a;
    a.kernel_h = kh, a.kernel_w = kw, a.stride_h = sh, a.stride_w = sw, a.pad_h = ph, a.pad_w = pw;
    return a;
  };
  const Spec specs[] = {
      {{2, 3, 6, 7}, pa(2, 2, 2, 2, 0, 0)},  {{2, 3, 7, 7}, pa(3, 3, 2, 2, 1, 1)},  // ResNet stem pool
      {{1, 2, 5, 6}, pa(3, 2, 1, 2, 1, 0)},  {{2, 2, 5, 5}, pa(2, 2, 1, 1, 0, 0)},  // overlapping windows
      {{2, 2, 7, 6}, pa(3, 3, 3, 2, 1, 1)},  {{3, 5, 5}, pa(2, 3, 2, 1, 1, 1)},     // unbatched
      {{1, 1, 1, 1}, pa(1, 1, 1, 1, 0, 0)},  {{2, 2, 4, 9}, pa(4, 1, 4, 3, 2, 0)},
  };
  for (PoolKind kind : {PoolKind::Max, PoolKind::Avg})
    for (const Spec& s : specs) {
      const ops::Pool2dArgs a = s.a;
      OpCase c;
      c.name = std::string("cnn/") + (kind == PoolKind::Max ? "max_pool2d" : "avg_pool2d") + "/" + shape_str(s.shape) +
               "/k" + dims({a.kernel_h, a.kernel_w}) + "/s" + dims({a.stride_h, a.stride_w}) + "/p" +
               dims({a.pad_h, a.pad_w});
      c.inputs = {InputSpec::floats(s.shape)};
      c.forward = [a, kind](const std::vector<Tensor>& in) {
        return kind == PoolKind::Max ? ops::max_pool2d(in[0], a) : ops::avg_pool2d(in[0], a);
      };
      c.reference = [a, kind](const std::vector<Tensor>& in) { return pool_ref(in[0], a, kind); };
      cases.push_back(c);
    }
  const struct {
    Shape shape;
    int64_t oh, ow;
  } adaptive[] = {{{2, 3, 5, 7}, 1, 1}, {{2, 3, 7, 5}, 3, 2}, {{1, 2, 5, 5}, 4, 4},
                  {{1, 2, 4, 6}, 2, 3}, {{2, 2, 3, 4}, 5, 7}, {{3, 5, 6}, 4, 4}};
  for (const auto& s : adaptive) {
    const int64_t oh = s.oh, ow = s.ow;
    OpCase c;
    c.name = "cnn/adaptive_avg_pool2d/" + shape_str(s.shape) + "/to" + dims({oh, ow});
    c.inputs = {InputSpec::floats(s.shape)};
    c.forward = [oh, ow](const std::vector<Tensor>& in) { return ops::adaptive_avg_pool2d(in[0], oh, ow); };
    c.reference = [oh, ow](const std::vector<Tensor>& in) { return adaptive_ref(in[0], oh, ow); };
    cases.push_back(c);
  }
}

// ---- batch_norm ----------------------------------------------------------------------------------

// mean/var: the statistics to normalise with (per channel).
Tensor bn_apply(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var, const Tensor& w,
                const Tensor& b, double eps) {
  const std::vector<double> v = values(x);
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / (N * C);
  const std::vector<double> wv = w.defined() ? values(w) : std::vector<double>(C, 1.0);
  const std::vector<double> bv = b.defined() ? values(b) : std::vector<double>(C, 0.0);
  std::vector<double> out(v.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t o = (n * C + c) * S + i;
        out[o] = (v[o] - mean[c]) / std::sqrt(var[c] + eps) * wv[c] + bv[c];
      }
  return from_values(out, x.shape());
}

Tensor bn_train_ref(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  const std::vector<double> v = values(x);
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / (N * C);
  std::vector<double> mean(C, 0.0), var(C, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) mean[c] += v[(n * C + c) * S + i] / double(N * S);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const double d = v[(n * C + c) * S + i] - mean[c];
        var[c] += d * d / double(N * S);
      }
  }
  return bn_apply(x, mean, var, w, b, eps);
}

void add_batchnorm_cases(std::vector<OpCase>& cases) {
  struct Spec {
    Shape shape;
    bool training, affine, running;  // running: pass (fresh) running statistics in training
    double eps;
  };
  const Spec specs[] = {
      {{4, 3, 2, 3}, true, true, true, 1e-5},   {{5, 4}, true, true, true, 1e-5},
      {{2, 3, 4, 4}, true, false, false, 1e-5}, {{3, 2, 5}, true, true, false, 1e-3},
      {{2, 3, 4, 4}, false, true, true, 1e-5},  {{6, 4}, false, false, true, 1e-5},
      {{2, 2, 3, 5}, false, true, true, 0.1},   {{8, 3, 16, 16}, true, true, true, 1e-5},  // spreads over threads
  };
  for (const Spec& s : specs) {
    const int64_t C = s.shape[1];
    const bool training = s.training, affine = s.affine, running = s.running;
    const double eps = s.eps;
    OpCase c;
    c.name = "cnn/batch_norm/" + shape_str(s.shape) + (training ? "/train" : "/eval") + (affine ? "/affine" : "") +
             (training && running ? "/running" : "") + "/eps" + std::to_string(eps);
    c.inputs = {InputSpec::floats(s.shape)};
    if (affine) c.inputs.push_back(InputSpec::floats({C}, 0.5, 1.5)), c.inputs.push_back(InputSpec::floats({C}));
    if (!training)
      c.inputs.push_back(InputSpec::constant({C}, -1.0, 1.0)), c.inputs.push_back(InputSpec::constant({C}, 0.5, 2.0));
    const int rs = affine ? 3 : 1;  // position of the running statistics (eval)
    c.forward = [=](const std::vector<Tensor>& in) {
      const Tensor w = affine ? in[1] : Tensor(), b = affine ? in[2] : Tensor();
      if (!training) return ops::batch_norm(in[0], in[rs], in[rs + 1], w, b, false, 0.1, eps);
      // Fresh running statistics per call: the forward stays a pure function of the inputs.
      const Device dev = in[0].device();
      Tensor rm = running ? Tensor::zeros({C}, DType::F32, dev) : Tensor();
      Tensor rv = running ? Tensor::ones({C}, DType::F32, dev) : Tensor();
      return ops::batch_norm(in[0], rm, rv, w, b, true, 0.1, eps);
    };
    c.reference = [=](const std::vector<Tensor>& in) {
      const Tensor w = affine ? in[1] : Tensor(), b = affine ? in[2] : Tensor();
      if (training) return bn_train_ref(in[0], w, b, eps);
      return bn_apply(in[0], values(in[rs]), values(in[rs + 1]), w, b, eps);
    };
    cases.push_back(c);
  }
}

// ---- subsample, pad_channels, upsampling ---------------------------------------------------------

Tensor subsample_ref(const Tensor& x, int64_t s) {
  const std::vector<double> v = values(x);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = (H + s - 1) / s, Wo = (W + s - 1) / s;
  std::vector<double> out;
  for (int64_t p = 0; p < N * C; ++p)
    for (int64_t i = 0; i < Ho; ++i)
      for (int64_t j = 0; j < Wo; ++j) out.push_back(v[(p * H + i * s) * W + j * s]);
  return from_values(out, {N, C, Ho, Wo});
}

Tensor pad_channels_ref(const Tensor& x, int64_t before, int64_t after) {
  const std::vector<double> v = values(x);
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3), Co = C + before + after;
  std::vector<double> out(N * Co * HW, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) out[(n * Co + c + before) * HW + i] = v[(n * C + c) * HW + i];
  return from_values(out, {N, Co, x.size(2), x.size(3)});
}

Tensor nearest_ref(const Tensor& x, int64_t Ho, int64_t Wo) {
  const std::vector<double> v = values(x);
  const int64_t H = x.size(2), W = x.size(3), planes = x.size(0) * x.size(1);
  std::vector<double> out;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < Ho; ++i)
      for (int64_t j = 0; j < Wo; ++j) out.push_back(v[(p * H + i * H / Ho) * W + j * W / Wo]);  // floor(dst in / out)
  return from_values(out, {x.size(0), x.size(1), Ho, Wo});
}

Tensor bilinear_ref(const Tensor& x, int64_t Ho, int64_t Wo) {
  const std::vector<double> v = values(x);
  const int64_t H = x.size(2), W = x.size(3), planes = x.size(0) * x.size(1);
  // Source coordinate (half-pixel centres, clamped at 0) and its two neighbours.
  auto src = [](int64_t o, int64_t in, int64_t out, int64_t& i0, int64_t& i1, double& frac) {
    const double s = std::max((o + 0.5) * double(in) / double(out) - 0.5, 0.0);
    i0 = std::min<int64_t>(int64_t(s), in - 1);
    i1 = std::min<int64_t>(i0 + 1, in - 1);
    frac = std::min(s - double(i0), 1.0);
  };
  std::vector<double> out;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < Ho; ++i)
      for (int64_t j = 0; j < Wo; ++j) {
        int64_t h0, h1, w0, w1;
        double fh, fw;
        src(i, H, Ho, h0, h1, fh);
        src(j, W, Wo, w0, w1, fw);
        auto at = [&](int64_t a, int64_t b) { return v[(p * H + a) * W + b]; };
        out.push_back((1 - fh) * ((1 - fw) * at(h0, w0) + fw * at(h0, w1)) + fh * ((1 - fw) * at(h1, w0) + fw * at(h1, w1)));
      }
  return from_values(out, {x.size(0), x.size(1), Ho, Wo});
}

void add_resample_cases(std::vector<OpCase>& cases) {
  for (const auto& [shape, s] : {std::pair<Shape, int64_t>{{2, 3, 5, 5}, 2}, {{1, 2, 4, 6}, 3}, {{2, 2, 3, 3}, 1},
                                 {{2, 2, 8, 8}, 2}}) {
    const int64_t st = s;
    OpCase c;
    c.name = "cnn/subsample2d/" + shape_str(shape) + "/s" + std::to_string(st);
    c.inputs = {InputSpec::floats(shape)};
    c.forward = [st](const std::vector<Tensor>& in) { return ops::subsample2d(in[0], st); };
    c.reference = [st](const std::vector<Tensor>& in) { return subsample_ref(in[0], st); };
    cases.push_back(c);
  }
  for (const auto& [before, after] : {std::pair<int64_t, int64_t>{1, 2}, {0, 3}, {2, 0}, {4, 4}}) {
    const int64_t b0 = before, a0 = after;
    OpCase c;
    c.name = "cnn/pad_channels/[2, 3, 2, 3]/" + std::to_string(b0) + "+" + std::to_string(a0);
    c.inputs = {InputSpec::floats({2, 3, 2, 3})};
    c.forward = [b0, a0](const std::vector<Tensor>& in) { return ops::pad_channels(in[0], b0, a0); };
    c.reference = [b0, a0](const std::vector<Tensor>& in) { return pad_channels_ref(in[0], b0, a0); };
    cases.push_back(c);
  }
  const struct {
    Shape shape;
    int64_t oh, ow;
  } sizes[] = {{{1, 2, 3, 4}, 6, 8}, {{1, 2, 3, 4}, 5, 7}, {{2, 2, 5, 7}, 2, 3},
               {{1, 2, 4, 5}, 1, 1}, {{1, 3, 4, 4}, 4, 4}, {{2, 1, 3, 5}, 7, 2}};
  for (bool bilinear : {false, true})
    for (const auto& s : sizes) {
      const int64_t oh = s.oh, ow = s.ow;
      OpCase c;
      c.name = std::string("cnn/") + (bilinear ? "upsample_bilinear2d/" : "upsample_nearest2d/") + shape_str(s.shape) +
               "/to" + dims({oh, ow});
      c.inputs = {InputSpec::floats(s.shape)};
      c.forward = [=](const std::vector<Tensor>& in) {
        return bilinear ? ops::upsample_bilinear2d(in[0], oh, ow) : ops::upsample_nearest2d(in[0], oh, ow);
      };
      c.reference = [=](const std::vector<Tensor>& in) {
        return bilinear ? bilinear_ref(in[0], oh, ow) : nearest_ref(in[0], oh, ow);
      };
      cases.push_back(c);
    }
}

}  // namespace

void add_cnn_cases(std::vector<OpCase>& cases) {
  add_conv_cases(cases);
  add_pool_cases(cases);
  add_batchnorm_cases(cases);
  add_resample_cases(cases);
}

namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}

TEST(CnnOps, Conv2dRejectsBadShapes) {
  const Tensor x = Tensor::zeros({2, 3, 8, 8});
  EXPECT_EQ(error_of([&] { ops::conv2d(x, Tensor::zeros({5, 4, 3, 3})); }),
            "conv2d: x float32[2, 3, 8, 8] cpu has 3 channels but weight float32[5, 4, 3, 3] cpu with groups=1 expects 4");
  EXPECT_EQ(error_of([&] { ops::conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({5, 3, 3, 3})); }),
            "conv2d: x must be [N, C_in, H, W], got float32[3, 8, 8] cpu");
  EXPECT_EQ(error_of([&] { ops::conv2d(x, Tensor::zeros({5, 3, 3, 3}), Tensor::zeros({4})); }),
            "conv2d: bias must be [5] for weight float32[5, 3, 3, 3] cpu, got float32[4] cpu");
  ops::Conv2dArgs g3;
  g3.groups = 3;
  EXPECT_EQ(error_of([&] { ops::conv2d(x, Tensor::zeros({5, 1, 3, 3}), Tensor(), g3); }),
            "conv2d: weight float32[5, 1, 3, 3] cpu: C_out = 5 is not divisible by groups=3");
  EXPECT_NE(error_of([&] { ops::conv2d(Tensor::zeros({1, 3, 2, 2}), Tensor::zeros({5, 3, 3, 3})); }).find("smaller than"),
            std::string::npos);
  EXPECT_THROW(ops::conv2d(x, Tensor::zeros({5, 3, 3, 3}, DType::F64)), std::invalid_argument);
}

TEST(CnnOps, PoolingAndResamplingRejectBadArguments) {
  const Tensor x = Tensor::zeros({2, 3, 8, 8});
  ops::Pool2dArgs a;
  a.kernel_h = a.kernel_w = 3;
  a.pad_h = a.pad_w = 2;
  EXPECT_NE(error_of([&] { ops::max_pool2d(x, a); }).find("padding must be at most half the kernel size"), std::string::npos);
  EXPECT_EQ(error_of([&] { ops::avg_pool2d(Tensor::zeros({8, 8}), ops::Pool2dArgs{}); }),
            "avg_pool2d: x must be [N, C, H, W] or [C, H, W], got float32[8, 8] cpu");
  EXPECT_THROW(ops::adaptive_avg_pool2d(x, 0, 1), std::invalid_argument);
  EXPECT_THROW(ops::upsample_bilinear2d(Tensor::zeros({3, 8, 8}), 4, 4), std::invalid_argument);
  EXPECT_THROW(ops::subsample2d(x, 0), std::invalid_argument);
  EXPECT_THROW(ops::pad_channels(x, -1, 0), std::invalid_argument);
}

TEST(CnnOps, BatchNormRejectsBadArguments) {
  const Tensor x = Tensor::zeros({4, 3, 5, 5});
  EXPECT_EQ(error_of([&] { ops::batch_norm(x, Tensor(), Tensor(), Tensor::ones({4}), Tensor(), true); }),
            "batch_norm: weight must be [3] for x float32[4, 3, 5, 5] cpu, got float32[4] cpu");
  EXPECT_EQ(error_of([&] { ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); }),
            "batch_norm: evaluation mode needs running_mean and running_var (x float32[4, 3, 5, 5] cpu)");
  EXPECT_EQ(error_of([&] { ops::batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true); }),
            "batch_norm: expected more than 1 value per channel when training, got x float32[1, 3] cpu");
  EXPECT_THROW(ops::batch_norm(Tensor::zeros({4}), Tensor(), Tensor(), Tensor(), Tensor(), true), std::invalid_argument);
}

// PyTorch breaks max-pool ties towards the first maximum, and a NaN wins.
TEST(CnnOps, MaxPoolTiesGoToTheFirstMaximum) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 3, 3, 2}, {1, 1, 2, 2});
  x.requires_grad_(true);
  ops::Pool2dArgs a;
  const Tensor y = ops::max_pool2d(x, a);
  EXPECT_EQ(y.item(), 3.0);
  y.backward(Tensor::ones({1, 1, 1, 1}, DType::F64));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1, 0, 0}));
  const Tensor xn = Tensor::from_vector(std::vector<float>{1, NAN, 5, 2}, {1, 1, 2, 2});
  EXPECT_TRUE(std::isnan(ops::max_pool2d(xn, a).item()));
}

// A 16-bit convolution whose channels suit NHWC (HONE_CUDNN_NHWC=1) still runs on cuDNN, in NCHW, when cuDNN
// refuses the NHWC descriptors (the emulator's HONE_EMU_CUDNN_NO_NHWC), with the CPU's result.
TEST(CnnOps, CudaConvolutionFallsBackToNchwWhenCudnnRefusesNhwc) {
#if !defined(HONE_CUDA_EMULATED)
  GTEST_SKIP() << "refusing NHWC is a switch of the CUDA emulator's cuDNN (build-emu)";
#else
  if (const char* off = std::getenv("HONE_CUDNN"); off && std::string(off) == "0")
    GTEST_SKIP() << "HONE_CUDNN=0 keeps convolutions off cuDNN in this run";
  const ScopedEnv nhwc("HONE_CUDNN_NHWC", "1"), no_nhwc("HONE_EMU_CUDNN_NO_NHWC", "1");
  const Tensor x = Tensor::rand({1, 8, 5, 7}, 41, -1, 1).to(DType::BF16);
  const Tensor w = Tensor::rand({8, 8, 3, 3}, 42, -1, 1).to(DType::BF16);
  ops::Conv2dArgs a;
  a.pad_h = a.pad_w = 1;
  const Tensor want = ops::conv2d(x.to(DType::F32), w.to(DType::F32), Tensor(), a);
  const Tensor got = ops::conv2d(x.to(Device::cuda(0)), w.to(Device::cuda(0)), Tensor(), a).to(Device::cpu());
  const std::vector<double> g = values(got.to(DType::F32)), e = values(want);
  ASSERT_EQ(g.size(), e.size());
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], e[i], 0.05 * std::max(1.0, std::fabs(e[i]))) << i;
  bool nchw = false, nhwc_refused = false;
  for (const std::string& line : ops::cuda_conv_algorithms()) {
    if (line.rfind("forward bf16 x[1,8,5,7] w[8,8,3x3]", 0) != 0) continue;
    if (line.find("NHWC") == std::string::npos)
      nchw = line.find("algo") != std::string::npos;
    else
      nhwc_refused = line.find("direct kernels") != std::string::npos;
  }
  EXPECT_TRUE(nchw && nhwc_refused) << "the forward was not retried in NCHW after NHWC was refused";
#endif
}

}  // namespace

}  // namespace hone::test
