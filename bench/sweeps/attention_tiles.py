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
    cfgs = [None, (128, 64, 8, 4), (128, 64, 8, 3), (64, 64, 4, 3), (64, 64, 4, 4), (64, 32, 4, 3), (128, 32, 8, 3), (64, 64, 8, 3), (128, 64, 8, 2), (128, 128, 8, 3), (64, 128, 4, 2)]
    for cfg in cfgs:
        try:
            sched = {} if cfg is None else {"0.BLOCK_M": cfg[0], "0.BLOCK_N": cfg[1], "0.WARPS": cfg[2], "0.STAGES": cfg[3]}
            fn = k.build("triton", schedule=sched)
            out = fn(q, kk, v, sc); err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
            t = bench(lambda: fn(q, kk, v, sc)); res.append((t, str(cfg or "default"), err))
        except Exception as e:
            print("fail", cfg, repr(e)[:200])
    for t, cfg, err in sorted(res)[:6]:
        print(f"  attn D={D} {cfg}: {t:.3f} ms {flops/t/1e9:.0f} TFLOP/s = {ts/t:.2f} of sdpa (err {err:.1e})")
