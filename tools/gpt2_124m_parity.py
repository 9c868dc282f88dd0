#!/usr/bin/env python3
"""GPT-2 124M parity of hone against Hugging Face transformers, at full size, on a device.

The committed fixtures (tests/fixtures/gpt2) are small models, checked in every test run. This
checks the real size: a GPT2LMHeadModel with GPT-2 124M's config (12 layers, 768 wide, 50257
tokens, tied head) and random weights is saved as a Hugging Face folder; transformers computes
logits, the loss and every parameter's gradient in float32 (TF32 off); `hone logits` and
`hone grads` compute them from the folder, in fp32 and in bf16 autocast, and are compared:

  fp32: logits within 1e-4 of max(1, max|logit|), loss within 1e-4, every gradient within 1e-4
        of its tensor's max|gradient| (the limits of tests/models/gpt2_parity_test.cpp, loss
        widened from 1e-5 for a 50257-way mean at this size);
  bf16: each error within the bf16 limit of that test (3e-2, 7e-3, 7.5e-2) or within 1.5x PyTorch's
        own bf16 autocast error against the same reference, whichever is larger (at full size bf16
        rounding alone can pass the small models' limits: PyTorch's worst gradient on an H200 was
        7.64e-2); PyTorch's errors are printed beside hone's.

tools/device-check.sh runs it on the GPU machine (which has torch and transformers):
  python3 tools/gpt2_124m_parity.py --hone build-device/run/tools/hone --device cuda
It runs on the CPU too (the reference environment of tests/fixtures), slower:
  /opt/hone-ref/bin/python tools/gpt2_124m_parity.py --hone build-cpu/tools/hone --device cpu --seq 64
Prints one "[parity124m] ..." line per check; exits 1 when one fails.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.numpy import load_file
from transformers import GPT2Config, GPT2LMHeadModel

LIMITS = {"fp32": (1e-4, 1e-4, 1e-4), "bf16": (3e-2, 7e-3, 7.5e-2)}  # logits, loss, gradients
PEER_FACTOR = 1.5  # bf16: within this factor of PyTorch's own bf16 autocast error also passes


def build_model(work, seed):
    torch.manual_seed(seed)
    config = GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)  # GPT-2 124M
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # norms and biases away from 1 and 0, so that they matter
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(work, safe_serialization=True)
    return model


def reference(model, ids, targets, device, autocast):
    """Logits, loss and gradients (keyed as in the checkpoint) as transformers computes them."""
    model = model.to(device).eval()
    model.zero_grad(set_to_none=True)
    x, t = torch.from_numpy(ids).to(device), torch.from_numpy(targets).to(device)
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
        logits = model(x).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), t.flatten(), ignore_index=-100)
    loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        if name == "lm_head.weight":
            continue  # tied: the checkpoint has only transformer.wte.weight, with both gradients
        grads[name] = p.grad.detach().float().cpu().numpy()
    return logits.detach().float().cpu().numpy(), float(loss), grads


def run_hone(args, work, what, precision, out):
    cmd = [args.hone, what, "--model", work, "--input", os.path.join(work, "inputs.npy"), "--out", out,
           "--device", args.device, "--precision", precision]
    if what == "grads":
        cmd += ["--targets", os.path.join(work, "targets.npy")]
    env = dict(os.environ)
    if args.hone_ld_path is not None:
        env["LD_LIBRARY_PATH"] = args.hone_ld_path
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")


def rel_err(got, want, floor):
    return float(np.max(np.abs(got.astype(np.float64) - want))) / max(floor, float(np.max(np.abs(want))))


def compare(logits, loss, grads, ref):
    ref_logits, ref_loss, ref_grads = ref
    logit_err = rel_err(logits, ref_logits, 1.0)
    loss_err = abs(loss - ref_loss)
    worst, worst_name = 0.0, ""
    for name, want in ref_grads.items():
        if name not in grads:
            raise RuntimeError(f"hone grads has no gradient for {name}")
        if grads[name].shape != want.shape:
            raise RuntimeError(f"{name}: hone's gradient has shape {grads[name].shape}, transformers' {want.shape}")
        e = rel_err(grads[name], want, 1e-12)
        if e > worst:
            worst, worst_name = e, name
    return logit_err, loss_err, worst, worst_name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hone", required=True, help="the hone binary")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--seed", type=int, default=124)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--work", default=None, help="folder for the model and outputs (default: a temporary one)")
    ap.add_argument("--hone-ld-path", default=None, help="LD_LIBRARY_PATH for the hone processes")
    args = ap.parse_args()
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    work = args.work or tempfile.mkdtemp(prefix="hone-parity124m-")
    os.makedirs(work, exist_ok=True)

    model = build_model(work, args.seed)
    rng = np.random.default_rng(args.seed)
    ids = rng.integers(0, model.config.vocab_size, size=(args.batch, args.seq), dtype=np.int64)
    targets = rng.integers(0, model.config.vocab_size, size=(args.batch, args.seq), dtype=np.int64)
    targets[:, :3] = -100  # ignored positions, as a padded batch has
    np.save(os.path.join(work, "inputs.npy"), ids)
    np.save(os.path.join(work, "targets.npy"), targets)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[parity124m] GPT-2 {n_params / 1e6:.1f}M parameters (random init, seed {args.seed}), "
          f"batch {args.batch} x {args.seq}, device {args.device}; torch {torch.__version__}", flush=True)

    ref = reference(model, ids, targets, args.device, autocast=False)
    failed = 0
    for precision in args.precisions.split(","):
        logits_path = os.path.join(work, f"logits-{precision}.npy")
        grads_path = os.path.join(work, f"grads-{precision}.safetensors")
        try:
            run_hone(args, work, "logits", precision, logits_path)
            run_hone(args, work, "grads", precision, grads_path)
            grads = load_file(grads_path)
            with safe_open(grads_path, "np") as f:  # hone writes the loss into the metadata
                loss = float(f.metadata()["loss"])
            errs = compare(np.load(logits_path), loss, grads, ref)
        except Exception as e:  # a crash or a missing output is a failed check, with its reason
            print(f"[parity124m] {precision} {args.device}: FAIL: {e}", flush=True)
            failed += 1
            continue
        limits = list(LIMITS[precision])
        peer = ""
        if precision == "bf16":  # how far PyTorch's own bf16 autocast lands from the same reference
            t = compare(*reference(model, ids, targets, args.device, autocast=True), ref)
            peer = f"; PyTorch bf16 autocast: logits {t[0]:.2e}, loss {t[1]:.2e}, worst gradient {t[2]:.2e}"
            limits = [max(limit, PEER_FACTOR * e) for limit, e in zip(limits, t[:3])]
        ok = errs[0] <= limits[0] and errs[1] <= limits[1] and errs[2] <= limits[2]
        failed += not ok
        print(f"[parity124m] {precision} {args.device}: logits {errs[0]:.2e}, loss {errs[1]:.2e}, "
              f"worst gradient {errs[2]:.2e} ({errs[3]}) against limits {limits[0]:g}/{limits[1]:g}/{limits[2]:g}: "
              f"{'PASS' if ok else 'FAIL'}{peer}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
