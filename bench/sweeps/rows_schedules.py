import torch, triton, kspec, itertools
from triton.testing import do_bench
M, N = 16384, 4096
x = torch.randn(M, N, device="cuda")
bench = lambda f: do_bench(f, warmup=25, rep=100, return_mode="median")
copy = bench(lambda: x.clone()); bw = 2 * x.numel() * 4 / copy / 1e6
print(f"{torch.cuda.get_device_name()} copy {bw:.0f} GB/s")
for spec, name, nbytes in [("row_sum", "row_sum", x.numel() * 4), ("softmax", "softmax", 2 * x.numel() * 4), ("vector_add", None, None)]:
    if name is None: continue
    k = kspec.load(f"specs/{spec}.kspec")[name]
    comp = torch.compile(lambda: x.sum(1) if name == "row_sum" else torch.softmax(x, 1)); comp()
    tc = bench(comp)
    res = []
    for bp, br, w, single in [(1, 4096, 8, True), (1, 4096, 4, True), (1, 4096, 16, True), (2, 4096, 8, True), (4, 1024, 4, False), (8, 512, 4, False), (4, 1024, 8, False), (2, 2048, 8, False), (16, 256, 4, False), (1, 2048, 4, False), (1, 1024, 4, False)]:
        try:
            fn = k.build("triton", schedule={"0.BLOCK_P": bp, "0.BLOCK_R": br, "0.WARPS": w})
            out = fn(x)
            t = bench(lambda: fn(x))
            res.append((t, bp, br, w))
        except Exception as e:
            print("fail", bp, br, w, repr(e)[:200])
    for t, bp, br, w in sorted(res)[:6]:
        print(f"{name} BLOCK_P={bp} BLOCK_R={br} warps={w}: {t:.4f} ms {nbytes/t/1e6:.0f} GB/s ({nbytes/t/1e6/bw:.2f} of copy) vs compile {tc:.4f} -> {tc/t:.2f}x")
