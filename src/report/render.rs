//! The report as text for a terminal, markdown for a chat message or a
//! ticket, JSON for machines, and one self-contained HTML page (inline CSS and
//! SVG, no script, no font or image fetched) that reads offline and in mail.

use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::{Line, Report};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Json,
    Html,
}

pub fn render(r: &Report, format: Format) -> String {
    match format {
        Format::Table => table(r),
        Format::Markdown => markdown(r),
        Format::Json => serde_json::to_string_pretty(r).expect("the report serialises") + "\n",
        Format::Html => html(r),
    }
}

/// The reports of one cycle, one per currency: each as [`render`] makes it, one
/// after the other; JSON an array when there are several.
pub fn render_all(reports: &[Report], format: Format) -> String {
    match (format, reports) {
        (_, [one]) => render(one, format),
        (Format::Json, _) => serde_json::to_string_pretty(reports).expect("the reports serialise") + "\n",
        (Format::Html, _) => html_page(reports),
        _ => reports.iter().map(|r| render(r, format)).collect::<Vec<_>>().join("\n"),
    }
}

/// Money to cents, with thousands separators (exact figures are in the JSON).
fn money(d: Decimal) -> String {
    let d = d.round_dp(2);
    let s = format!("{:.2}", d.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!(
        "{}{grouped}.{frac}",
        if d.is_sign_negative() && !d.is_zero() { "-" } else { "" }
    )
}

fn signed(d: Decimal) -> String {
    if d > Decimal::ZERO {
        format!("+{}", money(d))
    } else {
        money(d)
    }
}

fn headline(r: &Report) -> String {
    let change = match r.change_percent() {
        Some(p) => format!(
            "{} {} ({}{p}%) vs {}",
            signed(r.total - r.previous_total),
            r.currency,
            if p > Decimal::ZERO { "+" } else { "" },
            r.previous_cycle
        ),
        None => format!("no cost in {} to compare with", r.previous_cycle),
    };
    format!("{} {} in {}: {change}", money(r.total), r.currency, r.cycle)
}

/// The report's sections in the order every format shows them: title, lines,
/// and whether the lines are shares of the total (charted in HTML).
fn sections(r: &Report) -> Vec<(String, &[Line], bool)> {
    let mut v: Vec<(String, &[Line], bool)> = r
        .breakdowns
        .iter()
        .map(|b| (format!("By {}", b.by.name()), b.lines.as_slice(), true))
        .collect();
    v.push(("On-demand vs yearly/monthly".into(), &r.split, true));
    v.push(("Top resources".into(), &r.top_resources, false));
    if !r.movers.is_empty() {
        v.push((format!("Top movers vs {}", r.previous_cycle), &r.movers, false));
    }
    v
}

fn table(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", headline(r));
    let _ = writeln!(s, "{}; {}", r.finality, r.verify);
    for u in &r.unmatched {
        let _ = writeln!(s, "  does not reconcile: {u}");
    }
    let section = |s: &mut String, title: &str, lines: &[Line]| {
        let _ = writeln!(s, "\n{title}");
        let _ = writeln!(s, "  {:<44} {:>18} {:>18}", "", "cost", "vs previous");
        for l in lines {
            let _ = writeln!(
                s,
                "  {:<44} {:>18} {:>18}",
                l.label.chars().take(44).collect::<String>(),
                money(l.amount),
                signed(l.change())
            );
        }
    };
    for (title, lines, _) in sections(r) {
        let mut title = title;
        title[..1].make_ascii_lowercase();
        section(&mut s, &title, lines);
    }
    let _ = writeln!(s, "\ndaily");
    for (d, a) in &r.daily {
        let _ = writeln!(s, "  {d} {:>18}", money(*a));
    }
    s
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "**Huawei Cloud cost {}**: {}", r.cycle, headline(r));
    let _ = writeln!(s, "\n_{}; {}_", r.finality, r.verify);
    for u in &r.unmatched {
        let _ = writeln!(s, "- does not reconcile: {u}");
    }
    let section = |s: &mut String, title: &str, lines: &[Line]| {
        let _ = writeln!(s, "\n**{title}**\n\n| | cost | vs previous |\n|---|---:|---:|");
        for l in lines {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                l.label.replace('|', "\\|"),
                money(l.amount),
                signed(l.change())
            );
        }
    };
    for (title, lines, _) in sections(r) {
        section(&mut s, &title, lines);
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart of lines (at most 12), as inline SVG.
fn bars(lines: &[Line]) -> String {
    let shown: Vec<&Line> = lines.iter().take(12).collect();
    let max = shown.iter().map(|l| l.amount.abs()).max().unwrap_or_default();
    let (label_w, bar_w, row_h) = (260.0, 360.0, 22.0);
    let h = row_h * shown.len() as f64 + 4.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{h}" role="img">"#,
        label_w + bar_w + 120.0
    );
    for (i, l) in shown.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        // Drawing only: the figures printed beside the bars are exact to the cent.
        let frac = if max.is_zero() {
            0.0
        } else {
            (l.amount.abs() / max)
                .round_dp(4)
                .to_string()
                .parse::<f64>()
                .unwrap_or(0.0)
        };
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text><rect x="{}" y="{y}" width="{:.1}" height="{}" fill="#2f6db5"/><text x="{:.1}" y="{}" font-size="12">{}</text>"##,
            label_w - 6.0,
            y + 14.0,
            esc(&l.label.chars().take(36).collect::<String>()),
            label_w,
            (frac * bar_w).max(1.0),
            row_h - 6.0,
            label_w + (frac * bar_w).max(1.0) + 6.0,
            y + 14.0,
            money(l.amount)
        );
    }
    s.push_str("</svg>");
    s
}

/// The daily line of the cycle, as inline SVG.
fn daily_line(r: &Report) -> String {
    let (w, h, pad) = (720.0, 200.0, 30.0);
    let max = r.daily.iter().map(|(_, a)| a.abs()).max().unwrap_or_default();
    let n = r.daily.len().max(2) as f64 - 1.0;
    let points: Vec<String> = r
        .daily
        .iter()
        .enumerate()
        .map(|(i, (_, a))| {
            let frac = if max.is_zero() {
                0.0
            } else {
                (a.abs() / max).round_dp(4).to_string().parse::<f64>().unwrap_or(0.0)
            };
            format!(
                "{:.1},{:.1}",
                pad + i as f64 / n * (w - 2.0 * pad),
                h - pad - frac * (h - 2.0 * pad)
            )
        })
        .collect();
    let first = r.daily.first().map(|(d, _)| d.to_string()).unwrap_or_default();
    let last = r.daily.last().map(|(d, _)| d.to_string()).unwrap_or_default();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img"><polyline fill="none" stroke="#2f6db5" stroke-width="2" points="{}"/><line x1="{pad}" y1="{y}" x2="{x2}" y2="{y}" stroke="#999"/><text x="{pad}" y="{ty}" font-size="11">{first}</text><text x="{x2}" y="{ty}" font-size="11" text-anchor="end">{last}</text><text x="{pad}" y="14" font-size="11">max {}</text></svg>"##,
        points.join(" "),
        money(max),
        y = h - pad,
        x2 = w - pad,
        ty = h - 10.0,
    )
}

fn html(r: &Report) -> String {
    html_page(std::slice::from_ref(r))
}

/// One page holding the reports of a cycle, one section per currency.
fn html_page(reports: &[Report]) -> String {
    let mut s = String::new();
    let cycle = reports.first().map(|r| r.cycle.to_string()).unwrap_or_default();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Huawei Cloud cost {}</title><style>
body{{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:900px}}
h1{{font-size:22px}} h2{{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}}
.big{{font-size:28px;font-weight:600}} .muted{{color:#666}} table{{border-collapse:collapse}}
td,th{{padding:3px 10px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
.up{{color:#b3261e}} .down{{color:#1e7b34}}
</style></head><body>"#,
        cycle
    );
    for r in reports {
        html_body(&mut s, r);
    }
    s.push_str("<p class=\"muted\">Made by hcbill from the Huawei Cloud BSS bills; figures to the cent, exact sums in <code>--format json</code>.</p></body></html>\n");
    s
}

/// One report's part of the page.
fn html_body(s: &mut String, r: &Report) {
    let _ = write!(
        s,
        r#"<h1>Huawei Cloud cost — {}</h1><p class="big">{} {}</p><p>{}</p><p class="muted">{}; {}</p>"#,
        r.cycle,
        money(r.total),
        esc(&r.currency),
        esc(&headline(r)),
        esc(&r.finality),
        esc(&r.verify)
    );
    if !r.unmatched.is_empty() {
        s.push_str("<ul class=\"unmatched\">");
        for u in &r.unmatched {
            let _ = write!(s, "<li>does not reconcile: {}</li>", esc(u));
        }
        s.push_str("</ul>");
    }
    let section = |s: &mut String, title: &str, lines: &[Line], chart: bool| {
        let _ = write!(s, "<h2>{}</h2>", esc(title));
        if chart {
            s.push_str(&bars(lines));
        }
        s.push_str("<table><tr><th></th><th>cost</th><th>vs previous</th></tr>");
        for l in lines {
            let class = if l.change() > Decimal::ZERO { "up" } else { "down" };
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td>{}</td><td class="{class}">{}</td></tr>"#,
                esc(&l.label),
                money(l.amount),
                signed(l.change())
            );
        }
        s.push_str("</table>");
    };
    for (i, (title, lines, charted)) in sections(r).into_iter().enumerate() {
        // The daily chart stands between the breakdowns and the rest.
        if i == r.breakdowns.len() {
            let _ = write!(s, "<h2>Daily, {}</h2>{}", r.cycle, daily_line(r));
        }
        section(s, &title, lines, charted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_grouped_and_signed() {
        assert_eq!(money("1234567.891".parse().unwrap()), "1,234,567.89");
        assert_eq!(money("-0.004".parse().unwrap()), "0.00");
        assert_eq!(money("-1000".parse().unwrap()), "-1,000.00");
        assert_eq!(signed("12".parse().unwrap()), "+12.00");
        assert_eq!(esc("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
