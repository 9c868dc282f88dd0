// Embedding lookup and its backward (a deterministic scatter-add into the weight gradient).
#include "engine/ops/common.h"
#include "engine/ops/indexing_util.h"
#include "engine/ops/ops.h"
#include "kernels/embedding.h"

namespace hone::ops {

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  detail::require_same_device(weight, indices, "embedding");
  detail::require_floating(weight, "embedding");
  detail::require_index_dtype(indices, "embedding");
  if (weight.dim() != 2)
    throw std::invalid_argument("embedding: weight must be [num_embeddings, dim], got " + weight.str());
  const int64_t V = weight.size(0), C = weight.size(1);
  // Row-major ids, so that token t is the t-th id of the logical (not the memory) order.
  const Tensor ids = indices.contiguous();
  detail::check_ids_in_range(ids, V, "embedding", "an embedding table of " + std::to_string(V) + " rows");

  Shape out_shape = indices.shape();
  out_shape.push_back(C);
  const Tensor w = weight.detach().contiguous();
  Tensor out = Tensor::empty(out_shape, weight.dtype(), weight.device());
  const int64_t n = ids.numel();
  HONE_DISPATCH_FLOATING(w.dtype(), "embedding", [&] {
    detail::dispatch_index(ids, [&](auto tag) {
      using I = decltype(tag);
      const I* pi = static_cast<const I*>(ids.data_ptr());
      const auto* pw = static_cast<const scalar_t*>(w.data_ptr());
      auto* po = static_cast<scalar_t*>(out.data_ptr());
      if (detail::on_cuda(w)) {
        HONE_CUDA_ONLY("embedding",
                       kernels::cuda::embedding_forward<scalar_t, I>(n, V, C, pi, pw, po, cuda::stream(w.device())));
      } else {
        kernels::embedding_forward<scalar_t, I>(n, C, pi, pw, po);
      }
    });
  });

  if (needs_grad({&weight})) {
    SavedTensor ids_saved(ids);
    record("EmbeddingBackward", out, {weight}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor idv = ids_saved.unpack("EmbeddingBackward");
      const Tensor g = g_in.contiguous();
      // A tied weight (GPT-2's wte, also the LM head) usually has its head gradient already: the
      // scatter adds into it, touching only the rows the batch used, instead of writing a mostly
      // zero [V, C] gradient for the autograd to add over the whole table.
      Tensor gw = take_pending_grad(0);
      const bool accumulate =
          gw.defined() && gw.dtype() == g.dtype() && gw.shape() == Shape{V, C} && gw.device() == g.device();
      const Tensor prior = accumulate ? Tensor() : gw;  // (another dtype: added after, as the autograd would)
      if (!accumulate) gw = Tensor::empty({V, C}, g.dtype(), g.device());
      HONE_DISPATCH_FLOATING(g.dtype(), "embedding backward", [&] {
        detail::dispatch_index(idv, [&](auto tag) {
          using I = decltype(tag);
          const I* pi = static_cast<const I*>(idv.data_ptr());
          const auto* pg = static_cast<const scalar_t*>(g.data_ptr());
          auto* pgw = static_cast<scalar_t*>(gw.data_ptr());
          if (detail::on_cuda(g)) {
            HONE_CUDA_ONLY("embedding", kernels::cuda::embedding_backward<scalar_t, I>(
                                            n, V, C, pi, pg, pgw, cuda::stream(g.device()), accumulate));
          } else {
            kernels::embedding_backward<scalar_t, I>(n, V, C, pi, pg, pgw, accumulate);
          }
        });
      });
      return {prior.defined() ? ops::add(prior, gw) : gw};
    });
  }
  return out;
}

}  // namespace hone::ops
