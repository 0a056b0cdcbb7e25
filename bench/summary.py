#!/usr/bin/env python3
"""summary.py CSV: the table of a bench/run and the issue's targets, each met or not.

Table: every (tool, workload, N, loss, link) of the CSV (median over repetitions): seconds
until every receiver held a verified copy, goodput per receiver, % of the link, CPU seconds of
every process of the run during the push, peak RSS of our daemons (makuo only).
Targets: the quick-size table at N=4 and 200 Mbit/s; every cell against the best other tool
of that cell (>= 1.5x its % of the link, or >= 85 % where the best is above 60 %);
T(N=8)/T(N=1) on big at 100 Mbit/s; bytes per CPU second at unlimited rate, N=1, against
uftp; peak RSS of a 4 GiB push."""
import csv
import statistics
import sys
from collections import OrderedDict

rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["workload"] != "-"]
groups = OrderedDict()
for r in rows:
    key = (r["workload"], int(float(r["bytes"])), int(r["n"]), float(r["loss_pct"]), int(r["rate_mbit"]),
           r["tool"])
    groups.setdefault(key, []).append(r)

order = {t: i for i, t in enumerate(["makuo", "makuo_keyless", "uftp", "udpcast", "rsync_seq",
                                       "rsync_par"])}


def cell(rs):
    secs = statistics.median(float(r["seconds"]) for r in rs)
    ok = all(r["verified"] == "yes" and r["rc"] == "0" for r in rs)
    # timeout(1) ends a push at the run's cap with 124 (137 when it had to kill): such a run
    # did not finish, which says nothing about the bytes it left behind.
    capped = any(r["rc"] in ("124", "137") for r in rs)
    cpu = [float(r["cpu_s"]) for r in rs if r.get("cpu_s")]
    rss = [int(r["peak_rss_kib"]) for r in rs if r.get("peak_rss_kib")]
    return dict(secs=secs, ok=ok, capped=capped, cpu=statistics.median(cpu) if cpu else None,
                rss=max(rss) if rss else None)


cells = {k: cell(v) for k, v in groups.items()}


def pct(k):
    wl, b, n, loss, rate, tool = k
    c = cells[k]
    if not c["ok"] or rate == 0:
        return 0.0
    return b * 8 / c["secs"] / (rate * 1e6) * 100


def size(b):
    return f"{b / 2**20:.0f} MiB" if b >= 2**20 else f"{b / 2**10:.0f} KiB"


print("| tool | workload | N | loss % | link Mbit/s | seconds | goodput MiB/s | % of link "
      "| CPU s | peak RSS MiB | verified |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for k in sorted(cells, key=lambda k: (k[4] == 0, -k[4], k[0], k[3], k[2], order.get(k[5], 9))):
    wl, b, n, loss, rate, tool = k
    c = cells[k]
    gp = b / 2**20 / c["secs"]
    cpu = "-" if c["cpu"] is None else f"{c['cpu']:.2f}"
    rss = "-" if c["rss"] is None else f"{c['rss'] / 1024:.1f}"
    print(f"| {tool} | {wl} ({size(b)}) | {n} | {loss:g} | {rate or 'unlimited'} | "
          f"{c['secs']:.2f} | {gp:.1f} | {pct(k):.0f} | {cpu} | {rss} | "
          f"{'yes' if c['ok'] else 'timed out' if c['capped'] else 'NO'} |")

print("\n### Targets\n")
verdicts = []


def verdict(what, ok, detail):
    verdicts.append(ok)
    print(f"- {'met' if ok else 'MISSED'}: {what}: {detail}")


anchors = ["uftp", "udpcast", "rsync_seq", "rsync_par"]


def best_anchor(wl, b, n, loss, rate):
    best = None
    for t in anchors:
        k = (wl, b, n, loss, rate, t)
        if k in cells and (best is None or pct(k) > best[1]):
            best = (t, pct(k))
    return best


table = {("big", 0): 90, ("big", 2): 85, ("mixed", 0): 85, ("small", 0): 50, ("mixed", 2): 60,
         ("small", 2): 30}
for (wl, loss), need in table.items():
    for k in cells:
        if k[0] == wl and k[2] == 4 and k[3] == loss and k[4] == 200 and k[5] == "makuo":
            ba = best_anchor(*k[:5])
            other = f"; best other {ba[0]} {ba[1]:.0f} %" if ba else ""
            verdict(f"{wl}, {loss} % loss, N=4, 200 Mbit/s", pct(k) >= need,
                    f"makuo {pct(k):.0f} % of the link (needs {need} %){other}")

worst, ncells = [], 0
for k in cells:
    wl, b, n, loss, rate, tool = k
    ba = best_anchor(wl, b, n, loss, rate) if tool == "makuo" and rate else None
    if not ba:
        continue
    ncells += 1
    m = pct(k)
    if not (m >= 1.5 * ba[1] or (ba[1] > 60 and m >= 85)):
        worst.append(f"{wl} N={n} loss {loss:g} % {rate} Mbit/s: makuo {m:.0f} %, "
                     f"{ba[0]} {ba[1]:.0f} %")
if ncells:
    verdict(f"every cell >= 1.5x the best other tool, or >= 85 % where it is above 60 % "
            f"({ncells} cells)", not worst, "all cells" if not worst else "; ".join(worst))

# Keys are on by default: what sealing every datagram costs, cell by cell, in the same run.
slow = []
nkeyed = 0
for k in cells:
    wl, b, n, loss, rate, tool = k
    free = (wl, b, n, loss, rate, "makuo_keyless")
    if tool != "makuo" or not rate or free not in cells:
        continue
    nkeyed += 1
    if pct(k) < 0.95 * pct(free):
        slow.append(f"{wl} N={n} loss {loss:g} % {rate} Mbit/s: keyed {pct(k):.0f} %, "
                    f"keyless {pct(free):.0f} %")
if nkeyed:
    verdict(f"keyed goodput >= 95 % of keyless in every cell ({nkeyed} cells)", not slow,
            "all cells" if not slow else "; ".join(slow))

t = {n: cells.get(("big", b, n, 0.0, 100, "makuo")) for (wl, b, n, loss, rate, tool) in cells
     if wl == "big" and rate == 100 and tool == "makuo" and loss == 0}
if t.get(1) and t.get(8):
    r = t[8]["secs"] / t[1]["secs"]
    verdict("T(N=8)/T(N=1) on big at 100 Mbit/s", r <= 1.2,
            f"{t[8]['secs']:.2f} s / {t[1]['secs']:.2f} s = {r:.2f} (needs <= 1.2)")

eff = {}
for k, c in cells.items():
    wl, b, n, loss, rate, tool = k
    if rate == 0 and n == 1 and wl == "big" and b < 2**31 and c["cpu"] and c["ok"]:
        eff[tool] = b / c["cpu"]
if "makuo" in eff and "makuo_keyless" in eff:
    print(f"- (keys at unlimited rate: makuo {eff['makuo'] / 2**20:.0f} MiB/CPU-s keyed, "
          f"{eff['makuo_keyless'] / 2**20:.0f} keyless)")
if "makuo" in eff and "uftp" in eff:
    verdict("bytes delivered per CPU second at unlimited rate, N=1, against uftp",
            eff["makuo"] >= 2 * eff["uftp"],
            f"makuo {eff['makuo'] / 2**20:.0f} MiB/CPU-s, uftp {eff['uftp'] / 2**20:.0f} MiB/CPU-s "
            f"({eff['makuo'] / eff['uftp']:.2f}x, needs 2x)")

for k, c in cells.items():
    if k[5] == "makuo" and k[1] >= 2**32 and c["rss"]:
        verdict(f"peak RSS of every makuosan during a {size(k[1])} push", c["rss"] <= 64 * 1024,
                f"{c['rss'] / 1024:.1f} MiB (needs <= 64 MiB)")

print(f"\n{sum(verdicts)} of {len(verdicts)} targets met.")
