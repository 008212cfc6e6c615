"""What deployment gains: int8 onnxruntime vs float onnxruntime vs PyTorch.

For each network the same weights are exported with ``ssql_mm.deploy``:
float (BatchNorm folded, no Q/DQ, "ort-fp32"), 8w8a under the ``inputs``
placement ("int8-inputs": conv inputs quantized, convs that feed a residual
addition run in float), 8w8a under the ``integer`` placement
("int8-integer": every conv but the float-input stem and every addition an
integer kernel), the same with the stem input quantized at 8 bits
("int8-integer-stem8"), and onnxruntime's own static quantizer applied to the
float graph ("ort-quantizer": ``quantize_static``, QDQ, per-channel int8
weights, uint8 activations, the same calibration images). Each is timed in
onnxruntime's CPU provider next to PyTorch eager float, runs interleaved so
machine load affects all alike. Printed: median milliseconds, the median of
the per-round ratios ort-fp32 / runtime with their 10th-90th percentile
spread (batch-1 ratios swing from run to run), file sizes and the operators
of the graphs onnxruntime actually runs (integer ``QLinearConv`` vs float
convs, ``QLinearAdd`` vs float ``Add``). Weights are random (speed does not
depend on their values); activation ranges are calibrated on random images.

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
from ssql_mm.checkpoint import report_errors
from ssql_mm.deploy import (FeatureModel, OnnxRunner, export_qdq_model,
                            optimized_op_counts)
from ssql_mm.quantization import apply_overrides, calibrate

# name -> (backbone type, depth, image size)
CASES = {
    'r18-cifar': ('QuantResNet_CIFAR', 18, 32),
    'r18-224': ('QuantResNet', 18, 224),
    'r50-224': ('QuantResNet', 50, 224),
}
RUNTIMES = ('torch-fp32', 'ort-fp32', 'int8-inputs', 'int8-integer',
            'int8-integer-stem8', 'ort-quantizer')
# Graphs whose speed is reported relative to ort-fp32.
INT8 = RUNTIMES[2:]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', default=list(CASES),
                        choices=list(CASES))
    parser.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 32])
    parser.add_argument('--img-size', type=int,
                        help='override every case\'s image size (quick looks)')
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='threads of PyTorch and onnxruntime')
    parser.add_argument('--repeats', type=int, default=30,
                        help='timed rounds per batch size (each round runs '
                        'every runtime once)')
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


def build(backbone_type: str, depth: int, bits: int,
          placement: str = 'inputs') -> torch.nn.Module:
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type=backbone_type, depth=depth,
                                 w_bits=bits, a_bits=bits,
                                 placement=placement))
    return FeatureModel(backbone).eval()


class _Batches:
    """``onnxruntime.quantization.CalibrationDataReader`` over tensors."""

    def __init__(self, batches: List[torch.Tensor]) -> None:
        self._batches = iter(batches)

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {'input': batch.numpy()}


def ort_quantize(float_path: str, out: str,
                 calib: List[torch.Tensor]) -> None:
    """onnxruntime's static quantizer: QDQ, per-channel int8 weights."""
    from onnxruntime.quantization import (QuantFormat, QuantType,
                                          quantize_static)
    quantize_static(float_path, out, _Batches(calib),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)


def export_all(case: str, folder: str, size: int
               ) -> Dict[str, object]:
    """Export every graph of :data:`RUNTIMES`; return paths and the torch
    model."""
    backbone_type, depth, _ = CASES[case]
    calib = [torch.randn(4, 3, size, size) for _ in range(2)]
    fp32 = build(backbone_type, depth, 0)
    paths = {name: osp.join(folder, f'{case}-{name}.onnx')
             for name in RUNTIMES[1:]}
    export_qdq_model(fp32, paths['ort-fp32'])
    for name, placement in (('int8-inputs', 'inputs'),
                            ('int8-integer', 'integer'),
                            ('int8-integer-stem8', 'integer')):
        int8 = build(backbone_type, depth, 8, placement)
        if name.endswith('stem8'):
            apply_overrides(int8.backbone, [dict(name='conv1', a_bits=8)])
        calibrate(int8, calib)
        export_qdq_model(int8, paths[name])
    ort_quantize(paths['ort-fp32'], paths['ort-quantizer'], calib)
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
            warmup: int) -> Dict[str, List[float]]:
    """Seconds of every run of each function, runs interleaved (one run of
    each per round)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def ratio_stats(times: Dict[str, List[float]], base: str,
                name: str) -> Dict[str, float]:
    """Median and 10th / 90th percentiles of the per-round ratio
    ``base / name`` (a speed-up when above 1)."""
    ratios = sorted(b / t for b, t in zip(times[base], times[name]))
    deciles = statistics.quantiles(ratios, n=10, method='inclusive') if len(
        ratios) > 1 else ratios * 9
    return dict(median=statistics.median(ratios), p10=deciles[0],
                p90=deciles[-1])


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
                   repeats=args.repeats, cases={})
    with report_errors('deploy_speed'):
        print(f'CPU: {results["cpu"]}; threads {args.threads}; torch '
              f'{torch.__version__}; onnxruntime {ort.__version__}; '
              f'{args.repeats} rounds')
    header = ('| case | batch | ' + ' | '.join(f'{r} ms' for r in RUNTIMES) +
              ' | ' + ' | '.join(f'ort-fp32 / {r}' for r in INT8) + ' |')
    rows = [header, '|' + '---|' * (header.count('|') - 1)]
    with tempfile.TemporaryDirectory() as folder:
        for case in args.cases:
            size = args.img_size or CASES[case][2]
            exported = export_all(case, folder, size)
            paths = exported['paths']
            sizes = {n: osp.getsize(p) for n, p in paths.items()}
            entry = dict(img_size=size, file_bytes=sizes,
                         size_ratio=sizes['ort-fp32'] / sizes['int8-integer'],
                         ops={n: op_summary(p, args.threads)
                              for n, p in paths.items()},
                         ms={}, speedup={})
            for batch in args.batch_sizes:
                x = torch.randn(batch, 3, size, size)
                times = measure(timers(exported, x, args.threads),
                                args.repeats, args.warmup)
                med = {n: statistics.median(t) for n, t in times.items()}
                speedup = {n: ratio_stats(times, 'ort-fp32', n) for n in INT8}
                entry['ms'][batch] = {n: 1e3 * t for n, t in med.items()}
                entry['speedup'][batch] = speedup
                rows.append(
                    f'| {case}@{size} | {batch} | ' +
                    ' | '.join(f'{1e3 * med[r]:.2f}' for r in RUNTIMES) +
                    ' | ' + ' | '.join(
                        f'{s["median"]:.2f}x ({s["p10"]:.2f}-{s["p90"]:.2f})'
                        for s in speedup.values()) + ' |')
            results['cases'][case] = entry
    if args.out:  # first: a reader that stops early (| head) ends the tool
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    with report_errors('deploy_speed'):
        print('\n'.join(rows))
        print('\n| case | fp32 MiB | int8-integer MiB | fp32 / int8 size | '
              'integer / float convs, QLinearAdd / Add: ' + ', '.join(INT8) +
              ' |')
        print('|---|---|---|---|---|')
        for case, entry in results['cases'].items():
            mib = {n: b / 2**20 for n, b in entry['file_bytes'].items()}
            ops = entry['ops']
            print(f'| {case} | {mib["ort-fp32"]:.2f} | '
                  f'{mib["int8-integer"]:.2f} | {entry["size_ratio"]:.2f}x | '
                  + '; '.join(f'{ops[n]["QLinearConv"]} / '
                              f'{float_convs(ops[n])}, '
                              f'{ops[n]["QLinearAdd"]} / {ops[n]["Add"]}'
                              for n in INT8) + ' |')


if __name__ == '__main__':
    main()
