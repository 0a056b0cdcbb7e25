#!/usr/bin/env python3
"""report.py [--pivot] CSV [CSV...] > RESULTS.md  - markdown tables from bench.sh CSV rows.
--pivot: compact "seconds (% of link)" tables, tools x N, one per workload and loss.
Rows with the same (tool, workload, bytes, n, rate, loss) are merged: median seconds,
'verified' = yes only if every repetition verified."""
import csv, statistics, sys
from collections import OrderedDict

pivot = "--pivot" in sys.argv
rows = []
for path in [a for a in sys.argv[1:] if a != "--pivot"]:
    with open(path) as f:
        rows += list(csv.DictReader(f))

groups = OrderedDict()
for r in rows:
    if r["workload"] == "-":
        r = dict(r, bytes="0")          # iperf rows: one table regardless of bytes moved
    key = (r["workload"], r["bytes"], r["files"], r["rate_mbit"], r["sender_rate_mbit"],
           r["loss_pct"], r["n"], r["tool"])
    groups.setdefault(key, []).append(r)

def mib(b):
    return f"{int(b) / 2**20:.1f} MiB"

tool_order = {t: i for i, t in enumerate(["iperf3_tcp", "makuo", "rsync_seq", "rsync_par", "uftp", "uftp_aes", "uftp_tfmcc", "udpcast"])}
def sortkey(k):
    wl, b, files, rate, srate, loss, n, tool = k
    return (wl != "-", wl, int(b), float(loss), int(n), tool_order.get(tool, 99), tool)

def print_pivot():
    cells, ns, tools = {}, set(), {}
    for k, rs in groups.items():
        wl, b, files, rate, srate, loss, n, tool = k
        if wl == "-":
            continue
        secs = statistics.median(float(r["seconds"]) for r in rs)
        ok = all(r["verified"] == "yes" and r["rc"] == "0" for r in rs)
        # unlimited-rate rows (rate 0) have no link to be a share of
        pct = f" ({int(b) * 8 / secs / (float(rate) * 1e6) * 100:.0f}%)" if float(rate) else ""
        cells[(wl, b, files, rate, srate, loss, tool, n)] = (f"{secs:.2f} s{pct}" if ok else
            "FAIL (rc=" + "/".join(r["rc"] for r in rs) + ")")
        ns.add(int(n)); tools.setdefault((wl, b, files, rate, srate, loss), set()).add(tool)
    ns = sorted(ns)
    for t in sorted(tools, key=lambda t: (t[0], int(t[1]), float(t[5]))):
        wl, b, files, rate, srate, loss = t
        print(f"\n**{wl}** ({files} files, {mib(b)}), loss {loss} %, link {rate} Mbit/s — seconds (% of link rate)\n")
        print("| tool | " + " | ".join(f"N={n}" for n in ns) + " |")
        print("|---|" + "---:|" * len(ns))
        for tool in sorted(tools[t], key=lambda x: (tool_order.get(x, 99), x)):
            print(f"| {tool} | " + " | ".join(cells.get((*t, tool, str(n)), "–") for n in ns) + " |")

if pivot:
    print_pivot()
    sys.exit(0)

last = None
for k in sorted(groups, key=sortkey):
    wl, b, files, rate, srate, loss, n, tool = k
    rs = groups[k]
    head = (wl, b, rate, srate)
    if head != last:
        if wl == "-":
            print(f"\n### iperf3 TCP reference (node0 -> node1, link {rate} Mbit/s)\n")
        else:
            print(f"\n### workload `{wl}`: {files} files, {mib(b)}; receiver links {rate} Mbit/s, "
                  f"sender link {srate if srate != '0' else 'unlimited'} Mbit/s\n")
        print("| tool | workload | N | loss % | seconds | goodput MiB/s | % of link | verified | host CPU % | runs |")
        print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|")
        last = head
    secs = statistics.median(float(r["seconds"]) for r in rs)
    gp = int(b) / 2**20 / secs if wl != "-" else statistics.median(float(r["goodput_mibs"]) for r in rs)
    pct = gp * 2**20 * 8 / (float(rate) * 1e6) * 100
    ver = "n/a" if wl == "-" else ("yes" if all(r["verified"] == "yes" and r["rc"] == "0" for r in rs)
                                    else "NO (rc=" + "/".join(r["rc"] for r in rs) + ")")
    cpus = [float(r["cpu_pct"]) for r in rs if r.get("cpu_pct")]
    cpu = f"{statistics.median(cpus):.0f}" if cpus else "-"
    print(f"| {tool} | {wl} | {n} | {loss} | {secs:.2f} | {gp:.2f} | {pct:.1f} | {ver} | {cpu} | {len(rs)} |")
