// Attention through cuDNN's fused SDPA (kernels/cuda/attention_cudnn.cpp) against our own CUDA
// kernel, and the host rule that chooses between them (kernels/attention_path.cpp).
//
// AttentionPath.* (the rule, the graph key, the path record) run on every machine; SdpaGraphs.* in
// every build with the cuDNN frontend, GPU or not (the frontend's own validation of our graphs,
// which needs only the cuDNN library). The device cases (CudaAttentionCudnn.*) run with a CUDA
// device, or on the CUDA emulator (whose cuDNN backend runs the frontend's graphs operation by
// operation), in a build with the cuDNN frontend: they give
// cuDNN and our kernel the same 16-bit inputs (ours computes in float32 from them) and compare the
// output and the three gradients within bf16/f16 tolerances, on odd lengths, head dims 64 and 128,
// B*H > 1, causal or not, with and without a padding mask (right padding, left padding, and a batch
// whose keys are all padding, whose output and gradient rows must be exactly 0 as ours), with and
// without dropout (both sides draw the same mask from the same Philox stream, so they agree).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/attention.h"
#include "kernels/half.h"
#include "kernels/philox.h"
#include "scoped_env.h"

#if defined(HONE_WITH_CUDA)
#include "kernels/cuda_kernel_checks.h"
#include "kernels/runtime.h"
#endif

namespace hone::kernels {
namespace {

SdpaCall call_of(int64_t Tq, int64_t Tk, int64_t D, AttentionDType dt, bool causal, bool mask, float dropout = 0.f) {
  SdpaCall c;
  c.shape = {2, 3, Tq, Tk, D};
  c.dtype = dt;
  c.causal = causal;
  c.key_mask = mask;
  c.dropout_p = dropout;
  return c;
}

constexpr auto BF16 = AttentionDType::BF16;
constexpr auto F16 = AttentionDType::F16;

TEST(AttentionPath, CudnnTakes16BitAttentionWithFlashShapes) {
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(1024, 1024, 64, BF16, true, false)), "");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(37, 37, 128, F16, true, true)), "");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(257, 257, 64, BF16, false, true)), "");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(128, 128, 72, BF16, false, false)), "") << "72 = 9 x 8";
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(37, 128, 64, BF16, true, false)), "") << "bottom-right causal, Tq < Tk";
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(37, 128, 64, F16, false, true)), "") << "padding mask, Tq != Tk";
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(128, 128, 64, BF16, true, true, 0.1f)), "") << "dropout, our mask";
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(37, 128, 64, BF16, false, true, 0.1f)), "") << "dropout, Tq != Tk";
}

TEST(AttentionPath, EverythingElseRunsOurKernel) {
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(128, 128, 64, AttentionDType::F32, true, false)), "float32 inputs");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(128, 128, 64, AttentionDType::F64, true, false)), "float64 inputs");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(128, 128, 36, BF16, true, false)), "head dim 36 is not a multiple of 8");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(128, 128, 136, F16, true, false)), "head dim 136 is above 128");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(1, 1, 64, BF16, false, false)), "a single query row");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(1, 300, 64, BF16, true, false)), "a single query row");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(37, 128, 64, BF16, true, false, 0.1f)).rfind("causal with dropout", 0), 0u);
  SdpaCall huge = call_of(4096, 4096, 64, BF16, true, false, 0.1f);
  huge.shape.batch = 16, huge.shape.heads = 12;  // a 6 GiB mask
  EXPECT_EQ(cudnn_sdpa_unsupported(huge), "a dropout mask of 6144 MiB (above 4096 MiB)");
  huge.dropout_p = 0.f;
  EXPECT_EQ(cudnn_sdpa_unsupported(huge), "") << "no mask without dropout";
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(128, 37, 64, BF16, true, false)), "causal with more queries than keys");
  EXPECT_EQ(cudnn_sdpa_unsupported(call_of(37, 128, 64, BF16, true, true)).rfind("causal with a padding mask", 0), 0u);
  SdpaCall packed = call_of(37, 128, 64, BF16, false, false);
  packed.qkv_packed = true;
  EXPECT_EQ(cudnn_sdpa_unsupported(packed), "packed qkv with Tq != Tk");
  packed = call_of(128, 128, 64, BF16, true, true);
  packed.qkv_packed = true;
  EXPECT_EQ(cudnn_sdpa_unsupported(packed), "packed qkv with a padding mask");
  SdpaCall empty = call_of(16, 16, 64, BF16, false, false);
  empty.shape.batch = 0;
  EXPECT_EQ(cudnn_sdpa_unsupported(empty), "empty tensors");
}

TEST(AttentionPath, GraphKeyTellsApartEverythingAGraphDependsOn) {
  const SdpaCall c = call_of(128, 128, 64, BF16, true, true);
  const SdpaGraphKey base = sdpa_graph_key(0, c, 0.125f, true);
  EXPECT_EQ(sdpa_graph_key(0, c, 0.125f, true), base);
  std::vector<SdpaGraphKey> others{sdpa_graph_key(1, c, 0.125f, true), sdpa_graph_key(0, c, 0.126f, true),
                                   sdpa_graph_key(0, c, 0.125f, false)};
  for (int field = 0; field < 11; ++field) {
    SdpaCall d = c;
    switch (field) {
      case 0: d.shape.batch += 1; break;
      case 1: d.shape.heads += 1; break;
      case 2: d.shape.q_len += 1; break;
      case 3: d.shape.kv_len += 1; break;
      case 4: d.shape.head_dim += 8; break;
      case 5: d.dtype = F16; break;
      case 6: d.causal = false; break;
      case 7: d.key_mask = false; break;
      case 8: d.dropout_p = 0.1f; break;
      case 9: d.dropout_p = 0.2f; break;
      case 10:
        d.qkv_packed = true;
        break;
    }
    others.push_back(sdpa_graph_key(0, d, 0.125f, true));
  }
  for (size_t i = 0; i < others.size(); ++i) {
    EXPECT_FALSE(others[i] == base) << "change " << i;
    EXPECT_TRUE(others[i] < base || base < others[i]) << "change " << i;
  }
}

using test::ScopedEnv;

TEST(AttentionPath, EnvironmentTurnsCudnnAttentionOff) {
  ScopedEnv a("HONE_CUDNN_ATTENTION", nullptr), b("HONE_CUDNN", nullptr);
  EXPECT_TRUE(cudnn_attention_enabled());
  {
    ScopedEnv off("HONE_CUDNN_ATTENTION", "0");
    EXPECT_FALSE(cudnn_attention_enabled());
  }
  {
    ScopedEnv on("HONE_CUDNN_ATTENTION", "1");
    EXPECT_TRUE(cudnn_attention_enabled());
  }
  ScopedEnv all_off("HONE_CUDNN", "0");
  EXPECT_FALSE(cudnn_attention_enabled());
}

TEST(AttentionPath, EachPathIsSaidOnceAndTheLastIsRemembered) {
  const std::string a = "test path A (AttentionPath test)", b = "test path B (AttentionPath test)";
  testing::internal::CaptureStderr();
  note_attention_path(a);
  note_attention_path(a);
  note_attention_path(b);
  note_attention_path(a);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(said, "[hone] attention: " + a + "\n[hone] attention: " + b + "\n");
  EXPECT_EQ(last_attention_path(), a);
}

TEST(AttentionPath, PathNamesSayDtypeAndMasks) {
  EXPECT_EQ(cudnn_sdpa_path_name(call_of(64, 64, 64, BF16, true, true)), "cuDNN fused SDPA (bf16, causal, padding mask)");
  EXPECT_EQ(cudnn_sdpa_path_name(call_of(64, 64, 64, F16, false, false)), "cuDNN fused SDPA (f16)");
  EXPECT_EQ(cudnn_sdpa_path_name(call_of(64, 64, 64, BF16, false, true, 0.1f)),
            "cuDNN fused SDPA (bf16, padding mask, dropout)");
  SdpaCall packed = call_of(64, 64, 64, BF16, true, false);
  packed.qkv_packed = true;
  EXPECT_EQ(cudnn_sdpa_path_name(packed), "cuDNN fused SDPA (bf16, causal, packed qkv)");
}

TEST(AttentionPath, PaddingBiasIsExactIn16Bits) {
  EXPECT_EQ(float(bf16(kSdpaPaddingBias)), kSdpaPaddingBias);
  EXPECT_EQ(float(f16(kSdpaPaddingBias)), kSdpaPaddingBias);
  EXPECT_EQ(std::exp(double(kSdpaPaddingBias) + 30000.0), 0.0) << "a padded key must get exactly no weight";
}

#if defined(HONE_WITH_CUDA)
namespace kc = kernels::cuda;
using cudacheck::DeviceVec;

// One comparison: cuDNN with T inputs against our kernel on the same values in float32.
struct SdpaCase {
  int64_t B, H, Tq, Tk, D;
  bool causal;
  int mask;  // 0: none; 1: batch b%3 = 0 full, 1 right padding, 2 left padding; 2: as 1, the last batch all padding
  AttentionDType dtype;
  bool inference_too;  // also run the forward without statistics (a graph of its own)
  float dropout = 0.f;  // dropout on the probabilities: both sides draw the mask from the same Philox stream
  std::string name() const {
    std::string n = std::string(attention_dtype_name(dtype)) + "_B" + std::to_string(B) + "H" + std::to_string(H) +
                    "Tq" + std::to_string(Tq) + "Tk" + std::to_string(Tk) + "D" + std::to_string(D);
    if (causal) n += "_causal";
    if (mask == 1) n += "_padding";
    if (mask == 2) n += "_allpadded";
    if (dropout > 0.f) n += "_dropout" + std::to_string(int(dropout * 100 + 0.5f));
    return n;
  }
};

// Every length with both head dims, each (causal, mask) pair at least once per length; two cases with
// Tq < Tk; three in f16; four with dropout (GPT-2's and BERT's fine-tuning default, 0.1, and a heavy 0.5).
// 21 graph pairs (plus 6 inference graphs): cuDNN builds each once.
std::vector<SdpaCase> sdpa_cases() {
  std::vector<SdpaCase> cases;
  for (int64_t T : {37, 128, 257}) {
    cases.push_back({3, 2, T, T, 64, true, 1, BF16, T == 37});
    cases.push_back({3, 2, T, T, 64, false, 0, BF16, false});
    cases.push_back({3, 2, T, T, 128, true, 0, BF16, T == 257});
    cases.push_back({3, 2, T, T, 128, false, 2, BF16, false});
  }
  cases.push_back({3, 2, 128, 128, 64, true, 2, BF16, false});  // left padding + causal, and a batch with no key
  cases.push_back({2, 3, 37, 128, 64, true, 0, BF16, false});   // bottom-right causal
  cases.push_back({3, 2, 37, 128, 64, false, 2, BF16, false});  // padding mask, Tq != Tk
  cases.push_back({3, 2, 37, 37, 64, true, 2, F16, true});
  cases.push_back({2, 3, 128, 128, 128, true, 0, F16, true});
  cases.push_back({3, 2, 257, 257, 64, false, 1, F16, true});
  cases.push_back({3, 2, 257, 257, 64, true, 0, BF16, false, 0.1f});  // GPT-2 fine-tuning
  cases.push_back({3, 2, 128, 128, 64, false, 2, BF16, true, 0.1f});  // BERT fine-tuning, a batch with no key
  cases.push_back({3, 2, 37, 128, 128, false, 1, F16, false, 0.5f});  // Tq != Tk
  cases.push_back({2, 3, 37, 37, 64, true, 1, F16, false, 0.5f});
  return cases;
}

std::vector<uint8_t> key_valid_of(const SdpaCase& c) {
  std::vector<uint8_t> valid(c.B * c.Tk, 1);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t j = 0; j < c.Tk; ++j) {
      uint8_t v = 1;
      if (b % 3 == 1) v = j < (c.Tk * 7) / 10;   // right padding
      if (b % 3 == 2) v = j >= (c.Tk * 4) / 10;  // left padding: with causal, the first rows see nothing
      if (c.mask == 2 && b == c.B - 1) v = 0;    // nothing to attend to at all
      valid[b * c.Tk + j] = v;
    }
  return valid;
}

// Per row of [B, H, Tq] whether the query sees no key, and per row of [B, H, Tk] whether no query sees
// the key (padding, and with bottom-right causal masking, keys past every query's diagonal).
std::pair<std::vector<bool>, std::vector<bool>> blind_rows(const SdpaCase& c, const std::vector<uint8_t>& valid) {
  std::vector<bool> query_blind(size_t(c.B * c.H * c.Tq), true), key_unseen(size_t(c.B * c.H * c.Tk), true);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t i = 0; i < c.Tq; ++i)
      for (int64_t j = 0; j < c.Tk; ++j) {
        const bool sees = (!c.mask || valid[size_t(b * c.Tk + j)]) && (!c.causal || j <= i + c.Tk - c.Tq);
        if (!sees) continue;
        for (int64_t h = 0; h < c.H; ++h) {
          query_blind[size_t((b * c.H + h) * c.Tq + i)] = false;
          key_unseen[size_t((b * c.H + h) * c.Tk + j)] = false;
        }
      }
  return {query_blind, key_unseen};
}

// "" when got is within the tolerances of want: max |got - want| <= tol_max * max(1, max |want|) and
// ||got - want|| <= tol_rms * ||want|| (the second catches a systematic error the first forgives).
std::string close(const std::vector<float>& got, const std::vector<float>& want, double tol_max, double tol_rms,
                  const std::string& what) {
  if (got.size() != want.size()) return what + ": size mismatch";
  double scale = 1, worst = 0, diff2 = 0, norm2 = 0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) scale = std::max(scale, double(std::fabs(want[i])));
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(want[i]));
    if (std::isnan(d)) return what + ": element " + std::to_string(i) + " is " + std::to_string(got[i]);
    if (d > worst) worst = d, at = i;
    diff2 += d * d;
    norm2 += double(want[i]) * double(want[i]);
  }
  const double rms = norm2 > 0 ? std::sqrt(diff2 / norm2) : std::sqrt(diff2);
  if (worst <= tol_max * scale && rms <= tol_rms) return "";
  return what + ": max error " + std::to_string(worst) + " at " + std::to_string(at) + " (got " +
         std::to_string(got[at]) + ", want " + std::to_string(want[at]) + "; allowed " +
         std::to_string(tol_max * scale) + "), relative rms error " + std::to_string(rms) + " (allowed " +
         std::to_string(tol_rms) + ")";
}

template <class T>
std::vector<float> widen(const std::vector<T>& v) {
  return std::vector<float>(v.begin(), v.end());
}

template <class T>
std::string run_case(const SdpaCase& c) {
  const AttentionShape s{c.B, c.H, c.Tq, c.Tk, c.D};
  const size_t nq = c.B * c.H * c.Tq * c.D, nk = c.B * c.H * c.Tk * c.D;
  // The inputs rounded to T once; both sides see exactly these values.
  auto rounded = [](const std::vector<float>& x) { return std::vector<T>(x.begin(), x.end()); };
  const std::vector<T> q = rounded(cudacheck::random_floats(nq, 61)), k = rounded(cudacheck::random_floats(nk, 62)),
                       v = rounded(cudacheck::random_floats(nk, 63)), dout = rounded(cudacheck::random_floats(nq, 64));
  const std::vector<uint8_t> valid = key_valid_of(c);
  DeviceVec<uint8_t> dvalid(valid);
  const float scale = 1.f / std::sqrt(float(c.D));

  // Ours, in float32.
  AttentionOptions o;
  o.scale = scale;
  o.causal = c.causal;
  o.key_valid = c.mask ? dvalid.p : nullptr;
  o.dropout_p = c.dropout;
  o.seed = 0x5eed1234abcdULL;
  o.offset = 4242;
  DeviceVec<float> fq(widen(q)), fk(widen(k)), fv(widen(v)), fdo(widen(dout)), fout(nq), flse(nq / c.D), fdq(nq),
      fdk(nk), fdv(nk);
  kc::attention_forward<float>(s, o, fq.p, fk.p, fv.p, fout.p, flse.p, nullptr);
  kc::attention_backward<float>(s, o, fq.p, fk.p, fv.p, fout.p, flse.p, fdo.p, fdq.p, fdk.p, fdv.p, nullptr);

  // cuDNN's, training (stats kept) then inference.
  kc::CudnnSdpaArgs a;
  a.shape = s;
  a.scale = scale;
  a.causal = c.causal;
  a.key_valid = o.key_valid;
  a.training = true;
  a.dropout_p = o.dropout_p;
  a.seed = o.seed;
  a.offset = o.offset;
  const kc::ConvContext ctx;  // device 0, stream-ordered workspaces
  DeviceVec<T> hq(q), hk(k), hv(v), hdo(dout), hout(nq), hout_inf(nq), hdq(nq), hdk(nk), hdv(nk);
  DeviceVec<float> stats(nq / c.D);
  const kc::CudnnSdpaStatus st = kc::cudnn_sdpa_forward<T>(ctx, a, hq.p, hk.p, hv.p, hout.p, stats.p, nullptr);
  if (!st.ran) return "cuDNN forward did not run: " + st.why_not;
  const std::string why = kc::cudnn_sdpa_backward<T>(ctx, a, hq.p, hk.p, hv.p, hout.p, stats.p, hdo.p, hdq.p, hdk.p,
                                                     hdv.p, nullptr);
  if (!why.empty()) return "cuDNN backward did not run: " + why;
  if (c.inference_too) {
    a.training = false;
    const kc::CudnnSdpaStatus st_inf =
        kc::cudnn_sdpa_forward<T>(ctx, a, hq.p, hk.p, hv.p, hout_inf.p, nullptr, nullptr);
    if (!st_inf.ran) return "cuDNN inference forward did not run: " + st_inf.why_not;
  }

  const bool is_bf16 = std::is_same_v<T, bf16>;
  const double out_max = is_bf16 ? 2e-2 : 4e-3, out_rms = is_bf16 ? 1.5e-2 : 4e-3;
  const double grad_max = is_bf16 ? 4e-2 : 1e-2, grad_rms = is_bf16 ? 3e-2 : 8e-3;
  const std::vector<float> want_out = fout.get(), want_dq = fdq.get(), want_dk = fdk.get(), want_dv = fdv.get();
  const std::vector<float> got_out = widen(hout.get()), got_dq = widen(hdq.get()), got_dk = widen(hdk.get()),
                           got_dv = widen(hdv.get());
  for (const std::string& err : {close(got_out, want_out, out_max, out_rms, "out"),
                                 c.inference_too ? close(widen(hout_inf.get()), want_out, out_max, out_rms,
                                                         "out (inference graph)")
                                                 : std::string(),
                                 close(got_dq, want_dq, grad_max, grad_rms, "dq"),
                                 close(got_dk, want_dk, grad_max, grad_rms, "dk"),
                                 close(got_dv, want_dv, grad_max, grad_rms, "dv")})
    if (!err.empty()) return err;
  // The rows of queries that see no key (out, dq) and of keys no query sees (dk, dv) are exactly 0 on
  // both sides. (Other zeros of ours are cancellations, which cuDNN's rounding need not reproduce: with
  // dropout, a query that sees one key gets dq = 0 from dP - sum(dO * O) only when O is exact.)
  const auto [query_blind, key_unseen] = blind_rows(c, valid);
  for (auto [got, want, rows, what] :
       {std::tuple{&got_out, &want_out, &query_blind, "out"}, std::tuple{&got_dq, &want_dq, &query_blind, "dq"},
        std::tuple{&got_dk, &want_dk, &key_unseen, "dk"}, std::tuple{&got_dv, &want_dv, &key_unseen, "dv"}})
    for (size_t i = 0; i < want->size(); ++i)
      if ((*rows)[i / size_t(c.D)] && ((*got)[i] != 0.f || (*want)[i] != 0.f))
        return std::string(what) + ": element " + std::to_string(i) + " is " + std::to_string((*got)[i]) + " (ours " +
               std::to_string((*want)[i]) + ") in a row that must be exactly 0";
  return "";
}

#if defined(HONE_HAVE_CUDNN_SDPA)
// Without a device: the graphs of every call the rule lets through pass the frontend's own validation
// for sm_90 (the installed cuDNN library decides what it accepts), and the calls the rule keeps away
// are the ones the frontend refuses. What remains for a GPU is the choice of an engine and the numbers.
TEST(SdpaGraphs, EveryCallTheRuleLetsThroughPassesTheFrontendsValidation) {
  std::vector<SdpaCall> calls;
  for (const SdpaCase& c : sdpa_cases()) {
    SdpaCall call = call_of(c.Tq, c.Tk, c.D, c.dtype, c.causal, c.mask != 0, c.dropout);
    call.shape.batch = c.B;
    call.shape.heads = c.H;
    calls.push_back(call);
  }
  SdpaCall gpt2 = call_of(1024, 1024, 64, BF16, true, false), bert = call_of(128, 128, 64, F16, false, true);
  gpt2.shape.batch = 16, gpt2.shape.heads = 12;
  bert.shape.batch = 32, bert.shape.heads = 12;
  SdpaCall gpt2_finetune = gpt2, bert_finetune = bert;
  gpt2_finetune.dropout_p = bert_finetune.dropout_p = 0.1f;
  // GPT-2's own calls read q, k, v in place in its [B, T, 3C] projection (strided graphs).
  SdpaCall gpt2_packed = gpt2, gpt2_finetune_packed = gpt2_finetune;
  gpt2_packed.qkv_packed = gpt2_finetune_packed.qkv_packed = true;
  calls.insert(calls.end(), {gpt2, bert, gpt2_finetune, bert_finetune, gpt2_packed, gpt2_finetune_packed,
                             call_of(64, 64, 72, BF16, true, true), call_of(2, 2, 8, F16, false, false)});
  for (const SdpaCall& c : calls) {
    ASSERT_EQ(cudnn_sdpa_unsupported(c), "");
    for (bool training : {false, true})
      EXPECT_EQ(kc::cudnn_sdpa_validate(c, 0.125f, training, 90), "")
          << cudnn_sdpa_path_name(c) << " p " << c.dropout_p << " Tq " << c.shape.q_len << " Tk " << c.shape.kv_len << " D "
          << c.shape.head_dim << (training ? " training" : " inference");
  }
}

TEST(SdpaGraphs, TheFrontendRefusesWhatTheRuleKeepsAway) {
  const std::pair<SdpaCall, const char*> refused[] = {
      {call_of(128, 37, 64, BF16, true, false), "Bottom right causal mask does not support max_s_q > max_s_kv"},
      {call_of(37, 128, 64, BF16, true, true), "Bottom right causal mask is only supported with is_bias=False"},
      {call_of(1, 1, 64, BF16, false, false), "s_q = s_kv = 1 is not supported"},
      {call_of(37, 128, 64, BF16, true, false, 0.1f), "Bottom right causal mask is only supported with is_bias=False"}};
  for (const auto& [c, message] : refused) {
    EXPECT_NE(cudnn_sdpa_unsupported(c), "");
    const std::string why = kc::cudnn_sdpa_validate(c, 0.125f, true, 90);
    EXPECT_NE(why.find(message), std::string::npos) << why;
  }
}
#endif

bool device_cases_run() {
#if defined(HONE_HAVE_CUDNN_SDPA)
  return cuda_device_present();
#else
  return false;
#endif
}

// Registered only with a device and the cuDNN frontend (test_main says when there is no device).
class CudaAttentionCudnn : public ::testing::TestWithParam<SdpaCase> {};

TEST_P(CudaAttentionCudnn, MatchesOurKernelForwardAndBackward) {
  const SdpaCase& c = GetParam();
  const std::string err = c.dtype == BF16 ? run_case<bf16>(c) : run_case<f16>(c);
  EXPECT_TRUE(err.empty()) << c.name() << ": " << err;
}

INSTANTIATE_TEST_SUITE_P(Sdpa, CudaAttentionCudnn,
                         ::testing::ValuesIn(device_cases_run() ? sdpa_cases() : std::vector<SdpaCase>{}),
                         [](const ::testing::TestParamInfo<SdpaCase>& info) { return info.param.name(); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CudaAttentionCudnn);

// The mask cuDNN's graphs read is our Philox keep test, element for element (odd sizes: the last Philox
// block is partial; a non-zero offset).
TEST(CudaAttentionCudnnMask, IsOurPhiloxKeepTest) {
  if (!cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  const AttentionShape s{2, 3, 37, 41, 64};
  const size_t n = size_t(s.batch * s.heads * s.q_len * s.kv_len);
  for (float p : {0.1f, 0.5f}) {
    DeviceVec<bf16> mask(std::vector<bf16>(n, bf16(7.f)));
    kc::attention_dropout_mask<bf16>(s, p, 77, 13, mask.p, nullptr);
    const std::vector<bf16> got = mask.get();
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
      const float want = philox::uniform(77, 13, i) >= p ? 1.f : 0.f;
      ASSERT_EQ(float(got[i]), want) << "element " << i << " p " << p;
      kept += want != 0.f;
    }
    EXPECT_NEAR(double(kept) / double(n), 1.0 - p, 0.03) << "p " << p;
  }
}

// What the kernel-level entry point declines, and says so, without touching the outputs.
TEST(CudaAttentionCudnnDeclines, OddHeadDimSingleRowAndSwitchedOff) {
  if (!cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  const int64_t B = 2, H = 2, T = 16;
  for (auto [Tq, D, env_off, expect] :
       {std::tuple{T, int64_t(36), false, "head dim 36 is not a multiple of 8"},
        std::tuple{int64_t(1), int64_t(64), false, "a single query row"},
        std::tuple{T, int64_t(64), true, "turned off by HONE_CUDNN_ATTENTION=0 or HONE_CUDNN=0"}}) {
    ScopedEnv env("HONE_CUDNN_ATTENTION", env_off ? "0" : nullptr);
    const size_t nq = B * H * Tq * D, nk = B * H * T * D;
    DeviceVec<bf16> q(nq), k(nk), v(nk), out(std::vector<bf16>(nq, bf16(7.f)));
    DeviceVec<float> stats(B * H * Tq);
    kc::CudnnSdpaArgs a;
    a.shape = {B, H, Tq, T, D};
    a.scale = 0.125f;
    a.training = true;
    const kc::CudnnSdpaStatus st = kc::cudnn_sdpa_forward<bf16>(kc::ConvContext{}, a, q.p, k.p, v.p, out.p, stats.p,
                                                                nullptr);
    EXPECT_FALSE(st.ran) << expect;
#if defined(HONE_HAVE_CUDNN_SDPA)
    EXPECT_EQ(st.why_not, expect);
#else
    EXPECT_NE(st.why_not.find("this build has no cuDNN"), std::string::npos) << st.why_not;
#endif
    for (bf16 x : out.get()) ASSERT_EQ(float(x), 7.f) << "a declined call wrote its output";
  }
}
#endif  // HONE_WITH_CUDA

}  // namespace
}  // namespace hone::kernels
