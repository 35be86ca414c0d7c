"""The compression report as a person reads it (the same numbers as ``compression.json``)."""

from __future__ import annotations


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def format_report(report: dict) -> list[str]:
    """Lines of text: per-layer sparsity (pruning), then one row per model variant.

    Example:
        >>> lines = format_report({"kind": "quantize", "variants": [{"name": "float32 tflite", "accuracy": 0.98,
        ...     "raw_bytes": 2048, "gzip_bytes": 1024, "max_abs_diff": 0.0, "argmax_agreement": 1.0,
        ...     "latency": {"median_ms": 1.5}, "batch": 128}]})
        >>> lines[1].split()[:3]
        ['float32', 'tflite', '0.9800']
    """
    lines: list[str] = []
    if report.get("layers"):
        lines.append(f"{'layer':<22} {'type':<20} {'params':>9} {'nonzero':>9} {'sparsity':>8}")
        for r in report["layers"]:
            lines.append(f"{r['layer']:<22} {r['type']:<20} {r['params']:>9,} {r['nonzero']:>9,} {r['sparsity']:>8.1%}")
        t = report["totals"]
        lines.append(f"{'total':<22} {'':<20} {t['params']:>9,} {t['nonzero']:>9,} {t['sparsity']:>8.1%}  "
                     f"(kernels {t['kernel_sparsity']:.1%})")
        lines.append("")
    variants = report.get("variants", [])
    if not variants:
        return lines
    metric = next(k for k in ("accuracy", "mae") if k in variants[0])
    base = variants[0]
    lines.append(f"{'model':<22} {metric:>8} {'file':>12} {'gzipped':>12} {'gz vs first':>11} "
                 f"{'max|diff|':>10} {'agree':>6} {'ms/batch':>9}")
    for v in variants:
        ratio = v["gzip_bytes"] / base["gzip_bytes"] if base["gzip_bytes"] else 0.0
        agree = v.get("argmax_agreement")
        lines.append(f"{v['name']:<22} {v[metric]:>8.4f} {_kb(v['raw_bytes']):>12} {_kb(v['gzip_bytes']):>12} "
                     f"{ratio:>10.0%} {v['max_abs_diff']:>10.2g} {'' if agree is None else f'{agree:.1%}':>6} "
                     f"{v['latency']['median_ms']:>9.2f}")
    lines.append(f"(latency: median of 20 calls on a batch of {base['batch']}, CPU; 'agree': argmax equal to "
                 f"the first row's model)")
    if report.get("note"):
        lines.append(report["note"])
    return lines
