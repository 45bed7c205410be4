"""Draws the demo report's plots from its results.json (written by tools/demo/report.ts).

    python tools/demo/plots.py <results.json> <output dir>

Writes, and prints one per line:
  win_rate_by_round.png  gold win rate vs π_init per round, one line per configuration (seeds averaged) with its
                         95% interval as error bars and a band; a dashed line at 0.5 marks π_init.
  reward_vs_kl.png       mean gold reward against KL(π‖π_init), one series per configuration with its rounds
                         connected and labelled r0, r1, ...; π_init is the star at (0, its gold reward).

Needs only matplotlib (services/trainer/requirements-report.txt), draws with the Agg backend, reads nothing but
the given file, and is deterministic (same input, same PNG bytes). Exits 2 with a message on stderr when
results.json is missing or malformed.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WIN_RATE_PNG = "win_rate_by_round.png"
REWARD_KL_PNG = "reward_vs_kl.png"
# No "Software: matplotlib x.y" chunk, so the bytes do not change with a matplotlib bump either.
PNG_METADATA = {"Software": None}


class Malformed(Exception):
    pass


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Malformed(f"{where} is {json.dumps(value)}, expected a finite number")
    return float(value)


def _field(obj, key, where):
    if not isinstance(obj, dict):
        raise Malformed(f"{where} is not an object")
    if key not in obj:
        raise Malformed(f"{where} has no '{key}'")
    return obj[key]


def _list(value, where):
    if not isinstance(value, list):
        raise Malformed(f"{where} is not a list")
    return value


def _interval(value, where):
    pair = _list(value, where)
    if len(pair) != 2:
        raise Malformed(f"{where} has {len(pair)} elements, expected [low, high]")
    return _number(pair[0], f"{where}[0]"), _number(pair[1], f"{where}[1]")


def _mean(values):
    return sum(values) / len(values)


def load(path):
    """Returns (world, init_gold_reward, [(config, [(round, win, lo, hi, gold, kl), ...] averaged over seeds)])."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise Malformed(f"cannot read {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise Malformed(f"not JSON: {e}") from e
    world = _field(data, "world", "results")
    configs = _list(_field(data, "configs", "results"), "results.configs")
    init_gold = None
    sft = data.get("sft")
    if isinstance(sft, dict) and "gold_reward" in sft:
        init_gold = _number(sft["gold_reward"], "results.sft.gold_reward")

    series = []
    for ci, config in enumerate(configs):
        where = f"results.configs[{ci}]"
        name = _field(config, "config", where)
        if not isinstance(name, str):
            raise Malformed(f"{where}.config is not a string")
        by_round = OrderedDict()
        for si, seed in enumerate(_list(_field(config, "seeds", where), f"{where}.seeds")):
            swhere = f"{where}.seeds[{si}]"
            for ri, r in enumerate(_list(_field(seed, "rounds", swhere), f"{swhere}.rounds")):
                rwhere = f"{swhere}.rounds[{ri}]"
                rnd = _field(r, "round", rwhere)
                if isinstance(rnd, bool) or not isinstance(rnd, int):
                    raise Malformed(f"{rwhere}.round is {json.dumps(rnd)}, expected an integer")
                lo, hi = _interval(_field(r, "win_rate_ci", rwhere), f"{rwhere}.win_rate_ci")
                point = (
                    _number(_field(r, "win_rate", rwhere), f"{rwhere}.win_rate"),
                    lo,
                    hi,
                    _number(_field(r, "gold_reward", rwhere), f"{rwhere}.gold_reward"),
                    _number(_field(r, "kl", rwhere), f"{rwhere}.kl"),
                )
                if init_gold is None and "init_gold_reward" in r:
                    init_gold = _number(r["init_gold_reward"], f"{rwhere}.init_gold_reward")
                by_round.setdefault(rnd, []).append(point)
        rounds = [
            (rnd, *(_mean([p[k] for p in points]) for k in range(5)))
            for rnd, points in sorted(by_round.items())
        ]
        series.append((name, rounds))
    if not any(rounds for _, rounds in series):
        raise Malformed("no configuration has an evaluated round")
    return str(world), init_gold, series


def _colors(n):
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plot_win_rate(world, series, out):
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    all_rounds = sorted({r[0] for _, rounds in series for r in rounds})
    ax.axhline(0.5, color="0.35", linestyle="--", linewidth=1.2, label="π_init (0.5)", zorder=1)
    for i, ((name, rounds), color) in enumerate(zip(series, _colors(len(series)))):
        if not rounds:
            continue
        # Dodge the configurations a little along x so that their error bars do not hide one another.
        dodge = (i - (len(series) - 1) / 2) * 0.03
        x = [r[0] + dodge for r in rounds]
        win = [r[1] for r in rounds]
        lo = [r[2] for r in rounds]
        hi = [r[3] for r in rounds]
        ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0, zorder=2)
        # Error bars as well as the band: with a single round the band has no width.
        yerr = [[max(0.0, w - l) for w, l in zip(win, lo)], [max(0.0, h - w) for w, h in zip(win, hi)]]
        ax.errorbar(x, win, yerr=yerr, marker="o", color=color, linewidth=2, capsize=4, elinewidth=1, label=name, zorder=3)
    lows = [r[2] for _, rounds in series for r in rounds] + [0.5]
    highs = [r[3] for _, rounds in series for r in rounds] + [0.5]
    ax.set_ylim(max(0.0, min(lows) - 0.05), min(1.0, max(highs) + 0.05))
    ax.set_xticks(all_rounds)
    ax.set_xticklabels([f"r{r}" for r in all_rounds])
    if len(all_rounds) == 1:
        ax.set_xlim(all_rounds[0] - 0.5, all_rounds[0] + 0.5)
    ax.set_xlabel("round")
    ax.set_ylabel("gold win rate vs π_init")
    ax.set_title(f"Win rate by round — world {world} (mean over seeds, 95% CI)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(out, metadata=PNG_METADATA)
    plt.close(fig)


def plot_reward_vs_kl(world, init_gold, series, out):
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    markers = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
    for i, ((name, rounds), color) in enumerate(zip(series, _colors(len(series)))):
        if not rounds:
            continue
        kl = [r[5] for r in rounds]
        gold = [r[4] for r in rounds]
        ax.plot(kl, gold, marker=markers[i % len(markers)], color=color, linewidth=1.5, markersize=7, label=name, zorder=3)
        # Alternate the label side between series, so nearby points of two configurations keep both labels legible.
        offset, align = ((-7, 6), "right") if i % 2 == 0 else ((7, -13), "left")
        for r, x, y in zip(rounds, kl, gold):
            ax.annotate(f"r{r[0]}", (x, y), textcoords="offset points", xytext=offset, ha=align, fontsize=9, color=color, zorder=5)
    if init_gold is not None:
        ax.plot([0.0], [init_gold], marker="*", markersize=16, color="black", linestyle="none", label="π_init", zorder=4)
    ax.axvline(0.0, color="0.6", linewidth=0.8, zorder=1)
    ax.margins(x=0.08, y=0.12)
    ax.set_xlabel("KL(π‖π_init)  [nats per response]")
    ax.set_ylabel("mean gold reward")
    ax.set_title(f"Gold reward vs KL — world {world} (mean over seeds)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(out, metadata=PNG_METADATA)
    plt.close(fig)


def main(argv):
    if len(argv) != 3:
        print("usage: python tools/demo/plots.py <results.json> <output dir>", file=sys.stderr)
        return 2
    results_path, out_dir = argv[1], argv[2]
    try:
        world, init_gold, series = load(results_path)
    except Malformed as e:
        print(f"plots.py: malformed results.json ({results_path}): {e}", file=sys.stderr)
        return 2
    os.makedirs(out_dir, exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "demo"
    written = []
    for name, draw in (
        (WIN_RATE_PNG, lambda p: plot_win_rate(world, series, p)),
        (REWARD_KL_PNG, lambda p: plot_reward_vs_kl(world, init_gold, series, p)),
    ):
        path = os.path.join(out_dir, name)
        tmp = path + ".tmp.png"
        draw(tmp)
        os.replace(tmp, path)
        written.append(path)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
