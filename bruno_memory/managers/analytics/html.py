"""The analytics report as one self-contained HTML page: inline CSS and SVG charts, no
script and nothing fetched, so it opens offline from a file or an email attachment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from bruno_memory.managers.analytics.svg import bars, hbars, lines

CHARTS = ("growth", "active-hours", "turns-per-session", "session-length", "topics",
          "tier-hit-ratio", "tier-latency", "llm-cost")
"""The ``data-chart`` names of the figures a report draws."""

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
background:#f8fafc;color:#0f172a}
header{padding:20px 28px;background:#0f172a;color:#f8fafc}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#cbd5e1}
main{padding:12px 28px 40px;display:grid;gap:18px;
grid-template-columns:repeat(auto-fill,minmax(560px,1fr))}
section{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:14px 16px}
section.wide{grid-column:1/-1}h2{font-size:15px;margin:0 0 8px}
.kpis{display:flex;flex-wrap:wrap;gap:12px}.kpi{min-width:120px;padding:8px 12px;
background:#f1f5f9;border-radius:8px}.kpi b{display:block;font-size:20px}
figure{margin:0 0 10px}figcaption{font-weight:600;margin-bottom:4px;color:#334155}
svg{width:100%;max-width:760px;height:auto;display:block}.grid{stroke:#e2e8f0}.tick,.value{font-size:11px;fill:#475569}
.empty{font-size:14px;fill:#94a3b8}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e2e8f0}
.chips span{display:inline-block;margin:2px 4px 2px 0;padding:1px 8px;border-radius:10px;
background:#e0e7ff}.muted{color:#64748b}
"""


def render_html(report: Mapping[str, Any], title: str = "bruno-memory report") -> str:
    """The page for an ``analyze`` report."""
    scope = report["scope"].get("user_id")
    sub = f"user {scope}" if scope else "every user"
    body = [
        _section("Totals", _kpis(report["totals"]), wide=True),
        _section("Memory growth", _growth(report["growth"]), wide=True),
        _section("Conversation patterns", _patterns(report["patterns"])),
        _section("Topics", _topics(report["topics"])),
        _section("Tier performance", _tiers(report["tiers"]), wide=True),
        _section("LLM cost", _cost(report.get("cost")), wide=True),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(sub)} · generated "
        f"{escape(str(report['generated_at']))}</p></header><main>{''.join(body)}</main>"
        "</body></html>"
    )


def _section(heading: str, inner: str, *, wide: bool = False) -> str:
    cls = ' class="wide"' if wide else ""
    return f"<section{cls}><h2>{escape(heading)}</h2>{inner}</section>"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>"
                  for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _kpis(totals: Mapping[str, Any]) -> str:
    names = ("messages", "users", "conversations", "sessions", "memories")
    cards = "".join(f'<div class="kpi"><b>{int(totals.get(n, 0)):,}</b>{n}</div>'
                    for n in names)
    return f'<div class="kpis">{cards}</div>'


def _growth(growth: Mapping[str, Any]) -> str:
    daily = growth["daily"]
    return lines("growth", "Messages and memories per day (UTC)",
                 [d["day"] for d in daily],
                 {"messages": [d["messages"] for d in daily],
                  "memories": [d["memories"] for d in daily]})


def _histogram(summary: Mapping[str, Any], scale: float = 1.0) -> list[tuple[str, float]]:
    return [(f"{h['from'] / scale:.3g}-{h['to'] / scale:.3g}", h["count"])
            for h in summary.get("histogram", [])]


def _patterns(p: Mapping[str, Any]) -> str:
    r = p["responses"]
    mean = "-" if r["mean_seconds"] is None else f"{r['mean_seconds']:.1f} s"
    longest = "-" if r["max_seconds"] is None else f"{r['max_seconds']:.1f} s"
    text = (f'<p class="muted">{r["turns"]:,} user turns, {r["responses"]:,} replies right '
            f"after one: mean {mean}, longest {longest}. {p['sessions']:,} sessions "
            f"({p['active_sessions']:,} active).</p>")
    hours = [(f"{h:02d}", float(n)) for h, n in enumerate(p["active_hours"])]
    return text + "".join([
        bars("active-hours", "Messages per hour of the day (UTC)", hours, every=3),
        bars("turns-per-session", "Sessions by user turns", _histogram(p["turns_per_session"]),
             every=2),
        bars("session-length", "Sessions by length, first to last message (minutes)",
             _histogram(p["session_seconds"], 60.0), every=2),
    ])


def _topics(topics: Mapping[str, Mapping[str, Any]]) -> str:
    if not topics:
        return bars("topics", "Keywords", [], note="topics were not computed")
    out = []
    for user, periods in topics.items():
        if not periods:
            continue
        latest = max(periods)
        words = periods[latest]
        best = min((w["score"] for w in words), default=0.0) or 1e-9
        points = [(w["keyword"], round(best / max(w["score"], 1e-9), 3)) for w in words[:8]]
        out.append(hbars("topics", f"{user}: keywords of {latest} (relevance)", points))
        older = [f"<b>{escape(k)}</b> " + "".join(f"<span>{escape(w['keyword'])}</span>"
                                                  for w in v[:6])
                 for k, v in sorted(periods.items(), reverse=True)[1:]]
        if older:
            out.append('<div class="chips">' + "<br>".join(older) + "</div>")
    return "".join(out) or bars("topics", "Keywords", [], note="no text to draw keywords from")


def _tiers(tiers: Mapping[str, Mapping[str, Any]]) -> str:
    ratios = [(name, round(100 * t["hit_ratio"], 1)) for name, t in tiers.items()
              if t.get("hit_ratio") is not None]
    ops = sorted(((f"{name} · {op}", o) for name, t in tiers.items()
                  for op, o in t.get("operations", {}).items()),
                 key=lambda x: -x[1]["count"])[:12]
    rows = [[name, t["kind"], t["status"], "-" if t["hit_ratio"] is None
             else f"{100 * t['hit_ratio']:.1f}%", t["hits"], t["misses"],
             "-" if t["queue_depth"] is None else t["queue_depth"],
             "-" if t["flush_lag_s"] is None else t["flush_lag_s"], t["circuit"] or "-"]
            for name, t in tiers.items()]
    op_rows = [[label, o["count"], o["p50_ms"], o["p90_ms"], o["p99_ms"], o["max_ms"]]
               for label, o in ops]
    return "".join([
        _table(["tier", "kind", "status", "hit ratio", "hits", "misses", "queue",
                "flush lag s", "circuit"], rows),
        hbars("tier-hit-ratio", "Hit ratio of hot reads per tier", ratios, unit="%",
              note="no hot read reached a cache tier yet"),
        hbars("tier-latency", "p99 latency per tier and operation (ms)",
              [(label, o["p99_ms"]) for label, o in ops], unit=" ms"),
        _table(["tier · operation", "calls", "p50 ms", "p90 ms", "p99 ms", "max ms"], op_rows),
    ])


def _cost(cost: Mapping[str, Any] | None) -> str:
    if not cost:
        return bars("llm-cost", "LLM cost per day", [],
                    note="no CostTracker was passed to the report")
    days = [(d, v["cost"]) for d, v in cost["by_day"].items()]
    head = (f'<p class="muted">{cost["requests"]:,} requests, '
            f'{cost["input_tokens"] + cost["output_tokens"]:,} tokens, '
            f'{cost["cost"]:.4f} {escape(str(cost["currency"]))}</p>')
    rows = [[f"{g}: {k}", v["requests"], v["input_tokens"], v["output_tokens"],
             f"{v['cost']:.4f}"] for g in ("by_purpose", "by_model")
            for k, v in cost[g].items()]
    return head + bars("llm-cost", f"LLM cost per day ({cost['currency']})", days) + _table(
        ["group", "requests", "input tokens", "output tokens", "cost"], rows)
