"""What deployment gains: int8 onnxruntime vs float onnxruntime vs PyTorch.

For each network the same weights are exported three times with
``ssql_mm.deploy``: float (BatchNorm folded, no Q/DQ), int8 QDQ computing
what the fake-quantized model computes ("int8"), and int8 QDQ with the
residual inputs quantized too ("int8-res", every block conv an integer
kernel). Each is timed in onnxruntime's CPU provider next to PyTorch eager
float, runs interleaved so machine load affects all alike; the medians,
their ratios, the file sizes and the operators of the graphs onnxruntime
actually runs (integer ``QLinearConv`` vs float ``Conv``) are printed.
Weights are random (speed does not depend on their values); activation
ranges are calibrated on random images.

Example (the full table; heavy)::

    python tools/benchmarks/deploy_speed.py --threads 2 \
        --out work_dirs/deploy/speed.json
    # a quick look
    python tools/benchmarks/deploy_speed.py --cases r18-cifar \
        --batch-sizes 1 --repeats 3
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import tempfile
import time
from typing import Callable, Dict, List

import onnxruntime as ort
import torch
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import ssql_mm.models  # noqa: F401  (registers the quantized backbones)
from ssql_mm.deploy import (FeatureModel, OnnxRunner,
                            calibrate_residual_inputs, export_qdq_model,
                            optimized_op_counts)
from ssql_mm.quantization import calibrate

# name -> (backbone type, depth, image size)
CASES = {
    'r18-cifar': ('QuantResNet_CIFAR', 18, 32),
    'r18-224': ('QuantResNet', 18, 224),
    'r50-224': ('QuantResNet', 50, 224),
}
RUNTIMES = ('torch-fp32', 'ort-fp32', 'ort-int8', 'ort-int8-res')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', default=list(CASES),
                        choices=list(CASES))
    parser.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 32])
    parser.add_argument('--img-size', type=int,
                        help='override every case\'s image size (quick looks)')
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='threads of PyTorch and onnxruntime')
    parser.add_argument('--repeats', type=int, default=20,
                        help='timed runs per runtime and batch size')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args()


def cpu_name() -> str:
    """CPU model and its int8-relevant instruction sets (Linux)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                elif line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ('avx2', 'avx512f', 'avx512_vnni', 'avx_vnni',
                       'amx_int8') if f in flags]
    return f'{name} ({", ".join(isa)})' if isa else name


def build(backbone_type: str, depth: int, bits: int) -> torch.nn.Module:
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type=backbone_type, depth=depth,
                                 w_bits=bits, a_bits=bits))
    return FeatureModel(backbone).eval()


def export_all(case: str, folder: str, size: int
               ) -> Dict[str, object]:
    """Export float, int8 and int8-res; return paths and the torch model."""
    backbone_type, depth, _ = CASES[case]
    calib = [torch.randn(4, 3, size, size) for _ in range(2)]
    fp32 = build(backbone_type, depth, 0)
    int8 = build(backbone_type, depth, 8)
    calibrate(int8, calib)
    paths = {name: osp.join(folder, f'{case}-{name}.onnx')
             for name in RUNTIMES[1:]}
    export_qdq_model(fp32, paths['ort-fp32'])
    export_qdq_model(int8, paths['ort-int8'])
    export_qdq_model(int8, paths['ort-int8-res'],
                     residual_ranges=calibrate_residual_inputs(int8, calib))
    return {'paths': paths, 'torch': fp32}


def timers(exported: Dict[str, object], x: torch.Tensor,
           threads: int) -> Dict[str, Callable[[], None]]:
    model = exported['torch']
    fns: Dict[str, Callable[[], None]] = {}

    def torch_run() -> None:
        with torch.no_grad():
            model(x)

    fns['torch-fp32'] = torch_run
    x_np = x.numpy()
    for name, path in exported['paths'].items():
        runner = OnnxRunner(path, threads=threads)
        fns[name] = (lambda r=runner: r(x_np))
    return fns


def measure(fns: Dict[str, Callable[[], None]], repeats: int,
            warmup: int) -> Dict[str, float]:
    """Median seconds per run of each function, runs interleaved."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def op_summary(path: str, threads: int) -> Dict[str, int]:
    ops = optimized_op_counts(path, threads)
    return {op: ops.get(op, 0) for op in (
        'QLinearConv', 'Conv', 'FusedConv', 'QuantizeLinear',
        'DequantizeLinear', 'QLinearAdd', 'Add')}


def float_convs(ops: Dict[str, int]) -> int:
    """Convs run in float: plain, or fused with their activation."""
    return ops['Conv'] + ops['FusedConv']


def main() -> None:
    args = parse_args()
    init_default_scope('mmpretrain')
    torch.set_num_threads(args.threads)
    results = dict(cpu=cpu_name(), threads=args.threads,
                   torch=torch.__version__, onnxruntime=ort.__version__,
                   cases={})
    print(f'CPU: {results["cpu"]}; threads {args.threads}; torch '
          f'{torch.__version__}; onnxruntime {ort.__version__}')
    header = ('| case | batch | ' + ' | '.join(f'{r} ms' for r in RUNTIMES) +
              ' | fp32-ort / int8 | fp32-ort / int8-res | torch / int8-res |')
    rows = [header, '|' + '---|' * (header.count('|') - 1)]
    with tempfile.TemporaryDirectory() as folder:
        for case in args.cases:
            size = args.img_size or CASES[case][2]
            exported = export_all(case, folder, size)
            paths = exported['paths']
            sizes = {n: osp.getsize(p) for n, p in paths.items()}
            entry = dict(img_size=size, file_bytes=sizes,
                         size_ratio=sizes['ort-fp32'] / sizes['ort-int8'],
                         ops={n: op_summary(p, args.threads)
                              for n, p in paths.items()},
                         ms={})
            for batch in args.batch_sizes:
                x = torch.randn(batch, 3, size, size)
                med = measure(timers(exported, x, args.threads),
                              args.repeats, args.warmup)
                entry['ms'][batch] = {n: 1e3 * t for n, t in med.items()}
                rows.append(
                    f'| {case}@{size} | {batch} | ' +
                    ' | '.join(f'{1e3 * med[r]:.2f}' for r in RUNTIMES) +
                    f' | {med["ort-fp32"] / med["ort-int8"]:.2f}x'
                    f' | {med["ort-fp32"] / med["ort-int8-res"]:.2f}x'
                    f' | {med["torch-fp32"] / med["ort-int8-res"]:.2f}x |')
            results['cases'][case] = entry
    print('\n'.join(rows))
    print('\n| case | fp32 MiB | int8 MiB | fp32 / int8 size | ops run '
          '(integer / float convs: int8; int8-res) |')
    print('|---|---|---|---|---|')
    for case, entry in results['cases'].items():
        mib = {n: b / 2**20 for n, b in entry['file_bytes'].items()}
        ops = entry['ops']
        print(f'| {case} | {mib["ort-fp32"]:.2f} | {mib["ort-int8"]:.2f} | '
              f'{entry["size_ratio"]:.2f}x | '
              f'{ops["ort-int8"]["QLinearConv"]} / {float_convs(ops["ort-int8"])}; '
              f'{ops["ort-int8-res"]["QLinearConv"]} / '
              f'{float_convs(ops["ort-int8-res"])} |')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
