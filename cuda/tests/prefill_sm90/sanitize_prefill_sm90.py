# A few small shapes for compute-sanitizer (memcheck / racecheck / synccheck) over the Hopper prefill kernel.
import math, torch
from common import run

dev = "cuda"
torch.manual_seed(1)
for (qo, kv, D, causal, dtype) in [([100], [150], 128, True, torch.bfloat16), ([0, 65, 3], [7, 130, 0], 64, False, torch.float16),
                                   ([70], [90], 256, True, torch.bfloat16)]:
    nq, nk = sum(qo), sum(kv)
    q = torch.randn(nq, 4, D, dtype=dtype, device=dev)
    k = torch.randn(nk, 2, D, dtype=dtype, device=dev)
    v = torch.randn(nk, 2, D, dtype=dtype, device=dev)
    o = torch.empty_like(q)
    lse = torch.empty(nq, 4, dtype=torch.float32, device=dev)
    qi = torch.tensor([0] + torch.tensor(qo).cumsum(0).tolist(), dtype=torch.int32, device=dev)
    ki = torch.tensor([0] + torch.tensor(kv).cumsum(0).tolist(), dtype=torch.int32, device=dev)
    for variant in (0, 1):
        run(q, k, v, o, lse, qi, ki, 4, 2, causal, 1 / math.sqrt(D), variant)
        torch.cuda.synchronize()
print("sanitize shapes done")
