import torch, triton, kspec
from triton.testing import do_bench
bench = lambda f: do_bench(f, warmup=50, rep=200, return_mode="median")
print(torch.cuda.get_device_name())
k = kspec.load("specs/matmul.kspec").matmul
a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16); b = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
ref = a @ b
te = bench(lambda: a @ b); print(f"cublas {te:.3f} ms {2*8192**3/te/1e9:.0f} TFLOP/s")
res = []
for bm, bn, bk, w, st in [(128,128,64,8,3),(128,256,64,8,3),(128,256,64,8,4),(256,128,64,8,3),(128,128,64,4,4),(128,128,128,8,3),(128,256,32,8,4),(256,128,32,8,4),(128,128,64,8,4),(64,256,64,4,4)]:
    try:
        fn = k.build("triton", schedule={"0.BLOCK_M": bm, "0.BLOCK_N": bn, "0.BLOCK_K": bk, "0.WARPS": w, "0.STAGES": st})
        out = fn(a, b); err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
        t = bench(lambda: fn(a, b)); res.append((t, bm, bn, bk, w, st, err))
    except Exception as e:
        print("fail", bm, bn, bk, w, st, repr(e)[:150])
for t, bm, bn, bk, w, st, err in sorted(res):
    print(f"matmul {bm}x{bn}x{bk} w{w} s{st}: {t:.3f} ms {2*8192**3/t/1e9:.0f} TFLOP/s = {te/t:.2f} of cublas (err {err:.1e})")
