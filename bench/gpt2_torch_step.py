#!/usr/bin/env python3
"""The PyTorch peer of `hone bench gpt2`: the same GPT-2 124M training step (random init,
dropout off, forward + backward + AdamW), plain torch (no transformers).

On the CPU, with Debian's torch and the fast OpenBLAS kernels, 2 threads, fp32:
  OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=2 /usr/bin/python3 bench/gpt2_torch_step.py --batch 4 --seq 256
On a GPU, as `hone bench gpt2 --device cuda` runs (B=16, T=1024, bf16 autocast, fused AdamW);
--compile adds torch.compile (the strongest PyTorch configuration):
  python3 bench/gpt2_torch_step.py --device cuda --batch 16 --seq 1024 --precision bf16 [--compile]
Ends with: median_ms_per_step=<number> tokens_per_s=<number>
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch 1.13: the explicit form
            att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.H)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y = att.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L=12, H=12, C=768, V=50257, P=1024):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        # GPT-2's initialisation, as hone's model uses: N(0, 0.02), zero biases. (PyTorch's
        # defaults give N(0, 1) embeddings, a loss near 500 and denormal-heavy, slowing steps.)
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
    model = GPT().to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wte" not in n and "wpe" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "wte" not in n and "wpe" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if cuda else {}))
    x = torch.randint(0, 50257, (a.batch, a.seq), device=dev)
    y = torch.randint(0, 50257, (a.batch, a.seq), device=dev)
    step_model = torch.compile(model) if a.compile else model
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    scaler = torch.amp.GradScaler("cuda") if (a.precision == "fp16" and cuda) else None
    where = torch.cuda.get_device_name(dev) if cuda else f"{a.threads} threads"
    print(f"torch {torch.__version__}, {where}, batch {a.batch} x seq {a.seq}, {a.precision}"
          f"{', tf32' if a.tf32 else ''}{', torch.compile' if a.compile else ''}")
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            loss = step_model(x, y)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        value = loss.item()  # waits for the device, so the time is the whole step
        dt = (time.perf_counter() - t0) * 1e3
        print(f"step {s + 1}{' (warm-up)' if s < a.warmup else ''}: {dt:.1f} ms, loss {value:.4f}", flush=True)
        if s >= a.warmup:
            times.append(dt)
    times.sort()
    med = times[len(times) // 2]
    if cuda:
        print(f"peak device memory: {torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GiB allocated by tensors")
    print(f"median_ms_per_step={med:.3f} tokens_per_s={a.batch * a.seq / med * 1e3:.1f}")


if __name__ == "__main__":
    main()
