import torch, triton, kspec, torch.nn.functional as F
from triton.testing import do_bench
bench = lambda f: do_bench(f, warmup=50, rep=200, return_mode="median")
print(torch.cuda.get_device_name())
B, H, S = 16, 16, 2048
k = kspec.load("specs/attention.kspec").attention
for D in (64, 128):
    q, kk, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.float16) for _ in range(3))
    sc = D ** -0.5
    ref = F.scaled_dot_product_attention(q, kk, v, scale=sc)
    ts = bench(lambda: F.scaled_dot_product_attention(q, kk, v, scale=sc))
    flops = 4 * B * H * S * S * D
    print(f"D={D} sdpa {ts:.3f} ms {flops/ts/1e9:.0f} TFLOP/s")
    res = []
    for bm, bn, w, st in [(128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (128, 128, 4, 3), (64, 64, 4, 3), (128, 128, 8, 2), (64, 128, 4, 3), (128, 64, 8, 4), (128, 32, 4, 3)]:
        try:
            fn = k.build("triton", schedule={"0.BLOCK_M": bm, "0.BLOCK_N": bn, "0.WARPS": w, "0.STAGES": st})
            out = fn(q, kk, v, sc); err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
            t = bench(lambda: fn(q, kk, v, sc)); res.append((t, bm, bn, w, st, err))
        except Exception as e:
            print("fail", bm, bn, w, st, repr(e)[:200])
    for t, bm, bn, w, st, err in sorted(res)[:5]:
        print(f"  attn D={D} {bm}x{bn} w{w} s{st}: {t:.3f} ms {flops/t/1e9:.0f} TFLOP/s = {ts/t:.2f} of sdpa (err {err:.1e})")
k = kspec.load("specs/matmul_bias_gelu.kspec").matmul_bias_gelu
M, N, K = 1024, 8192, 8192
a = torch.randn(M, K, device="cuda", dtype=torch.float16); b = torch.randn(K, N, device="cuda", dtype=torch.float16); bias = torch.randn(N, device="cuda", dtype=torch.float16)
te = bench(lambda: F.gelu(a @ b + bias)); tc = bench(lambda: a @ b)
print(f"mbg eager {te:.3f} cublas-only {tc:.3f}")
res = []
for bm, bn, bk, w, st in [(128,128,64,8,3),(128,256,64,8,3),(128,128,64,8,4),(128,128,128,8,3),(64,256,64,4,4),(128,256,32,8,4),(64,128,64,4,4),(128,64,64,4,4),(256,128,64,8,3)]:
    try:
        fn = k.build("triton", schedule={"0.BLOCK_M": bm, "0.BLOCK_N": bn, "0.BLOCK_K": bk, "0.WARPS": w, "0.STAGES": st})
        fn(a, b, bias); t = bench(lambda: fn(a, b, bias)); res.append((t, bm, bn, bk, w, st))
    except Exception as e:
        print("fail", bm, bn, bk, w, st, repr(e)[:200])
for t, bm, bn, bk, w, st in sorted(res)[:5]:
    print(f"  mbg {bm}x{bn}x{bk} w{w} s{st}: {t:.3f} ms = {te/t:.2f}x eager")
