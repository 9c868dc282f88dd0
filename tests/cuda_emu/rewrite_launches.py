#!/usr/bin/env python3
"""Turns a CUDA source (kernels/cuda/*.cu) into C++ for the CUDA emulator (tests/cuda_emu).

Three rewrites, each keeping the line count so that compiler messages and debuggers point at the
original lines (a #line directive names the original file):
  - the emulator's device header is included first;
  - kernel<<<grid, block[, shared[, stream]]>>>(args...) becomes
    ::hone::emu::launch("kernel", ::hone::emu::config(grid, block, ...), [&](auto&&... a) { kernel(a...); }, args...);
    for a kernel declared with __launch_bounds__(N), the config is ::hone::emu::bounded(config(...), N), so the
    emulator refuses more than N threads per block (as a GPU does) and knows the kernel's registers are bounded;
  - extern __shared__ T name[]; becomes T* name = reinterpret_cast<T*>(::hone::emu::dynamic_shared());

Usage: rewrite_launches.py IN.cu OUT.cpp
"""
import re
import sys


def kernel_start(src, end):
    """Start of the kernel expression that ends at src[end] (exclusive): name, ::, <template args>.
    Whitespace may stand between it and <<< (clang-format breaks long launches there)."""
    i = end
    while i > 0 and src[i - 1].isspace():
        i -= 1
    while True:
        if i > 0 and src[i - 1] == ">":  # template arguments: walk back to the matching '<'
            depth = 0
            while i > 0:
                i -= 1
                if src[i] == ">":
                    depth += 1
                elif src[i] == "<":
                    depth -= 1
                    if depth == 0:
                        break
        j = i
        while j > 0 and (src[j - 1].isalnum() or src[j - 1] == "_"):
            j -= 1
        if j == i:
            raise ValueError("no kernel name before <<< at offset %d" % end)
        i = j
        if src[i - 2:i] == "::":
            i -= 2
            continue
        return i


def matching_paren(src, open_at):
    depth = 0
    i = open_at
    while i < len(src):
        c = src[i]
        if c in "\"'":
            q = c
            i += 1
            while src[i] != q:
                i += 2 if src[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced parentheses after offset %d" % open_at)


def launch_bounds(src):
    """{kernel name: its __launch_bounds__ max-threads expression} for the kernels declared in src."""
    return {m.group(2): m.group(1).strip()
            for m in re.finditer(r"__launch_bounds__\s*\(([^,()]+)(?:,[^()]*)?\)\s*(\w+)\s*\(", src)}


def rewrite(src):
    bounds = launch_bounds(src)
    out = []
    pos = 0
    while True:
        at = src.find("<<<", pos)
        if at < 0:
            out.append(src[pos:])
            break
        start = kernel_start(src, at)
        close = src.index(">>>", at)
        cfg = src[at + 3:close]
        paren = close + 3
        while src[paren].isspace():
            paren += 1
        if src[paren] != "(":
            raise ValueError("expected ( after >>> at offset %d" % close)
        end = matching_paren(src, paren)
        kernel = src[start:at]
        args = src[paren + 1:end]
        out.append(src[pos:start])
        name = " ".join(kernel.split()).replace("\\", "\\\\").replace('"', '\\"')
        config = "::hone::emu::config(%s)" % cfg
        base = re.sub(r"<.*", "", kernel).split("::")[-1].strip()
        if base in bounds:
            config = "::hone::emu::bounded(%s, %s)" % (config, bounds[base])
        out.append('::hone::emu::launch("%s", %s, [&](auto&&... hone_emu_a) { %s(hone_emu_a...); }%s%s)'
                   % (name, config, kernel, ", " if args.strip() else "", args))
        pos = end + 1
    text = "".join(out)
    return re.sub(r"extern\s+__shared__\s+([\w:\s]+?)\s+(\w+)\s*\[\s*\]\s*;",
                  r"\1* \2 = reinterpret_cast<\1*>(::hone::emu::dynamic_shared());", text)


def main():
    src_path, out_path = sys.argv[1], sys.argv[2]
    with open(src_path) as f:
        src = f.read()
    text = '#include "cuda_emu/device.h"\n#line 1 "%s"\n' % src_path + rewrite(src)
    with open(out_path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
