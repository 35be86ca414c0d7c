"""Medians, ratios and the Markdown tables of ``vs_keras.py`` (pure Python, importable without TensorFlow)."""

from __future__ import annotations

import statistics
from typing import Any, Optional

LABELS = {"a": "(a) plain Keras", "b": "(b) kerasopt, same settings", "c": "(c) kerasopt defaults"}


def _med(values: list[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def throughput_table(runs: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, Any]]:
    """Per model: median examples/s and epoch time of each variant, ratios of medians, and the median of
    the per-repeat (paired) ratios, which the targets use.

    Example:
        >>> runs = {"m": {"a": [{"ok": True, "examples_per_sec": 100.0, "epoch_s_median": 2.0, "repeat": 0}],
        ...               "b": [{"ok": True, "examples_per_sec": 98.0, "epoch_s_median": 2.1, "repeat": 0}],
        ...               "c": [{"ok": True, "examples_per_sec": 150.0, "epoch_s_median": 1.5, "repeat": 0}]}}
        >>> t = throughput_table(runs)["m"]
        >>> round(t["b/a"], 2), round(t["c/a"], 2), round(t["b/a paired"], 2), round(t["b/a whole paired"], 3)
        (0.98, 1.5, 0.98, 0.952)
    """
    out: dict[str, dict[str, Any]] = {}
    for model, by_v in runs.items():
        row: dict[str, Any] = {}
        for v, rs in by_v.items():
            ok = [r for r in rs if r.get("ok")]
            row[v] = {"examples_per_sec": _med([r["examples_per_sec"] for r in ok]),
                      "epoch_s": _med([r["epoch_s_median"] for r in ok]), "runs": len(ok), "failed": len(rs) - len(ok),
                      "per_repeat": [r["examples_per_sec"] for r in ok],
                      "precision": ok[0].get("precision") if ok else None,
                      "jit_compile": ok[0].get("jit_compile") if ok else None}
        for v in ("b", "c"):
            a, x = row.get("a", {}).get("examples_per_sec"), row.get(v, {}).get("examples_per_sec")
            row[f"{v}/a"] = x / a if a and x else None
            pairs = {r["repeat"]: r["examples_per_sec"] for r in by_v.get("a", []) if r.get("ok")}
            row[f"{v}/a per repeat"] = [r["examples_per_sec"] / pairs[r["repeat"]] for r in by_v.get(v, [])
                                        if r.get("ok") and r.get("repeat") in pairs]
            row[f"{v}/a paired"] = _med(row[f"{v}/a per repeat"])
            # whole epochs (training + validation + epoch-end callbacks): the same examples in less time
            whole = {r["repeat"]: r["epoch_s_median"] for r in by_v.get("a", []) if r.get("ok")}
            row[f"{v}/a whole per repeat"] = [whole[r["repeat"]] / r["epoch_s_median"] for r in by_v.get(v, [])
                                              if r.get("ok") and r.get("repeat") in whole]
            row[f"{v}/a whole paired"] = _med(row[f"{v}/a whole per repeat"])
        out[model] = row
    return out


def _f(x: Optional[float], fmt: str = ",.0f") -> str:
    return format(x, fmt) if x is not None else "n/a"


def _tta_cell(rs: list[dict]) -> tuple[str, Optional[float]]:
    ok = [r for r in rs if r.get("ok")]
    reached = [r for r in ok if r.get("reached")]
    if not ok:
        return "failed", None
    if len(reached) < len(ok):
        worst = max(r.get("elapsed_s") or 0.0 for r in ok if not r.get("reached"))
        return f"not reached in {len(ok) - len(reached)} of {len(ok)} runs (ran {worst:.1f} s)", None
    secs = _med([r["seconds"] for r in reached])
    epochs = _med([r["epoch"] for r in reached])
    return f"{secs:.1f} s (epoch {epochs:g})", secs


def markdown(result: dict) -> str:
    lines: list[str] = []
    check = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    targets: list[str] = []
    if "throughput" in result:
        table = throughput_table(result["throughput"])
        result["throughput_summary"] = table
        lines += ["Training throughput, examples/s (median over the rounds; epochs after the first, timed to the "
                  "start of validation). b/a and c/a: median of the per-round ratios, (a), (b) and (c) of a round "
                  "run back to back in one process. *Whole*: the same ratios on whole epochs (training, "
                  "validation and every epoch-end callback: checkpoint, CSV, TensorBoard), from the median epoch "
                  "times:", "",
                  f"| model | {LABELS['a']} | {LABELS['b']} | {LABELS['c']} | b/a | c/a | b/a whole | c/a whole | "
                  "b/a whole per round | epoch s a / b / c | (c) chose |", "|---" * 11 + "|"]
        for model, row in table.items():
            c = row.get("c", {})
            chose = f"{c.get('precision')}, XLA {'on' if c.get('jit_compile') else 'off'}" if c.get("precision") else ""
            per_round = " ".join(f"{x:.2f}" for x in row.get("b/a whole per repeat", []))
            lines.append(
                f"| {model} | {_f(row['a']['examples_per_sec'])} | {_f(row['b']['examples_per_sec'])} | "
                f"{_f(c.get('examples_per_sec'))} | {_f(row['b/a paired'], '.3f')} | {_f(row['c/a paired'], '.2f')} | "
                f"{_f(row['b/a whole paired'], '.3f')} | {_f(row['c/a whole paired'], '.2f')} | "
                f"{per_round} | {_f(row['a']['epoch_s'], '.3f')} / {_f(row['b']['epoch_s'], '.3f')} / "
                f"{_f(c.get('epoch_s'), '.3f')} | {chose} |")
            if row["b/a whole paired"] is not None:
                targets.append(f"- (b)/(a) >= 0.97 on whole epochs for {model}: {row['b/a whole paired']:.3f}, "
                               f"{check(row['b/a whole paired'] >= 0.97)} (per step, to validation: "
                               f"{_f(row['b/a paired'], '.3f')})")
        d = table.get("digits_cnn", {})
        if d.get("c/a paired") is not None:
            targets.append(f"- (c)/(a) >= 1.3 for the digits CNN: {d['c/a paired']:.2f}, "
                           f"{check(d['c/a paired'] >= 1.3)}")
        lines.append("")
    if "time_to_accuracy" in result:
        t = result["time_to_accuracy"]
        thr = result.get("threshold", 0.99)
        rec, rec_s = _tta_cell(t["recipe"])
        f32, f32_s = _tta_cell(t.get("recipe_f32", []))
        same, same_s = _tta_cell(t.get("same_recipe", []))
        base, base_s = _tta_cell(t["baseline"])

        def best(rs: list[dict]) -> str:
            return _f(_med([r.get("best_val_accuracy") for r in rs if r.get("ok")]), ".4f")

        def per_seed(rs: list[dict]) -> str:
            return ", ".join(f"{r.get('seed')}: " + (f"{r['seconds']:.1f} s (ep {r['epoch']})" if r.get("reached")
                                                      else "not reached" if r.get("ok") else "failed") for r in rs)

        def chose(rs: list[dict]) -> str:
            got = sorted({f"{r.get('precision')}, XLA {'on' if r.get('jit_compile') else 'off'}" for r in rs
                          if r.get("ok")})
            return "; ".join(got)

        lines += [f"Time to {thr:.0%} validation accuracy on digits (from the start of `model.fit`, compilation "
                  "included; median over the seeds, each seed's split the same for every row):", "",
                  "| run | precision | time to accuracy | per seed | best val accuracy |", "|---|---|---|---|---|",
                  f"| kerasopt, `configs/digits_cnn.yaml` as shipped | {chose(t['recipe'])} | {rec} | "
                  f"{per_seed(t['recipe'])} | {best(t['recipe'])} |",
                  f"| kerasopt, the same recipe at float32, XLA off | {chose(t.get('recipe_f32', []))} | {f32} | "
                  f"{per_seed(t.get('recipe_f32', []))} | {best(t.get('recipe_f32', []))} |",
                  f"| plain Keras, the same recipe (BN 0.9, AdamW 3e-3, cosine + warm-up, batch 128, translation) | "
                  f"float32, XLA off | {same} | {per_seed(t.get('same_recipe', []))} | "
                  f"{best(t.get('same_recipe', []))} |",
                  f"| plain Keras, the recipe's CNN without BatchNorm, Adam 1e-3, batch 64 | float32, XLA off | "
                  f"{base} | {per_seed(t['baseline'])} | {best(t['baseline'])} |", ""]
        ratios = [  # (result key, numerator, denominator, what the ratio says)
            ("tta_engine_ratio", f32_s, same_s, "the engine's cost, same recipe and arithmetic: kerasopt at float32 / "
                                                f"plain Keras time to {thr:.0%}"),
            ("tta_auto_ratio", rec_s, f32_s, "what `precision: auto` adds: kerasopt as shipped / kerasopt at float32"),
            ("tta_shipped_vs_plain_ratio", rec_s, same_s, "kerasopt as shipped / plain Keras with the same recipe"),
            ("tta_recipe_ratio", same_s, base_s, "the recipe's value, both in plain Keras: recipe / hand-written "
                                                 f"baseline time to {thr:.0%}"),
            ("tta_ratio", rec_s, base_s, "both together: kerasopt as shipped / hand-written baseline"),
        ]
        for key, num, den, what in ratios:
            if num and den:
                result[key] = num / den
                verdict = f" (target <= 0.5), {check(num / den <= 0.5)}" if key == "tta_ratio" else ""
                targets.append(f"- {what} = {num / den:.2f}{verdict}")
    if "pipeline" in result:
        p = result["pipeline"]
        rate = {k: _med([r["stats"]["examples_per_sec"] for r in rs if r.get("ok")]) for k, rs in p.items()}
        lines += ["`image_dir` input pipeline (digits as PNG files, decode + resize to 32x32 + translation "
                  "augmentation + normalization, batch 128):", "", "| measured | examples/s |", "|---|---|",
                  f"| input pipeline alone, `data.cache: false` (decodes every epoch) | {_f(rate['feed_decode'])} |",
                  f"| input pipeline alone, `data.cache: true` (default) | {_f(rate['feed_cached'])} |",
                  f"| model alone (`kerasopt bench --mode synthetic`, kerasopt defaults) | {_f(rate['model'])} |",
                  f"| end to end, cache off (`--mode train`) | {_f(rate['end_to_end'])} |", ""]
        if rate["feed_decode"] and rate["model"]:
            ratio = rate["feed_decode"] / rate["model"]
            result["pipeline_ratio"] = ratio
            targets.append(f"- input pipeline feeds {ratio:.1f}x the model's training throughput (target >= 5x), "
                           f"{check(ratio >= 5)}")
    if "defaults" in result:
        lines += ["`kerasopt bench` variants behind the defaults (each row its own process; steps after warm-up):", "",
                  "| check | mode | variant | precision, XLA | examples/s | step ms median (IQR) | vs as given |",
                  "|---|---|---|---|---|---|---|"]
        for name, chk in result["defaults"].items():
            for r in chk["rows"]:
                if not r.get("ok"):
                    lines.append(f"| {name} | {chk['mode']} | {r['label']} | | failed: {r.get('error')} | | |")
                    continue
                s = r["stats"]
                how = f"{r.get('precision', '')}, {'on' if r.get('jit_compile') else 'off'}"
                lines.append(f"| {name} | {chk['mode']} | {r['label']} | {how} | {_f(s['examples_per_sec'])} | "
                             f"{s['median_ms']:.1f} ({s['iqr_ms']:.1f}) | {_f(r.get('vs_as_given'), '.2f')}x |")
        lines.append("")
    if "help_s" in result:
        h = result["help_s"]
        lines += [f"`kerasopt --help`: median {h['median']:.3f} s, max {h['max']:.3f} s "
                  f"over {len(h['all'])} runs.", ""]
        targets.append(f"- `kerasopt --help` under 0.5 s: {h['median']:.3f} s, {check(h['median'] < 0.5)}")
    if "gpu" in result:
        g = result["gpu"]
        lines += [f"GPU: ResNet-50, synthetic {g['config']['data']['shape']}, batch {g['config']['data']['batch_size']}"
                  + (" (reduced shapes: harness check only, not a GPU figure)" if g.get("small") else "") + ":", "",
                  "| variant | examples/s | step ms median | IQR ms | peak GPU MiB |", "|---|---|---|---|---|"]
        for r in g["rows"]:
            if r.get("ok"):
                s = r["stats"]
                lines.append(f"| {r['label']} | {_f(s['examples_per_sec'])} | {s['median_ms']:.1f} | "
                             f"{s['iqr_ms']:.1f} | {_f(r.get('device_peak_mb'))} |")
            else:
                lines.append(f"| {r['label']} | failed: {r.get('error')} | | | |")
        lines.append("")
    if targets:
        lines += ["Targets:", "", *targets]
    return "\n".join(lines)
