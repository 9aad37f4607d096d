//! A hand-written SVG of grouped bar charts, one panel under another (no plotting dependency).

use std::fmt::Write as _;

/// One panel: for each group (x), one bar per series.
pub struct Chart {
    pub title: String,
    pub groups: Vec<String>,
    pub series: Vec<String>,
    /// `values[series][group]`; None draws no bar.
    pub values: Vec<Vec<Option<f64>>>,
    /// The top of the y axis; None: from the data.
    pub max: Option<f64>,
}

const COLORS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];
const BAR: f64 = 24.0;
const GROUP_GAP: f64 = 28.0;
const LEFT: f64 = 64.0;
const MIN_PLOT_WIDTH: f64 = 560.0;
const PANEL_HEIGHT: f64 = 410.0;
const PLOT_TOP: f64 = 56.0;
const PLOT_HEIGHT: f64 = 220.0;
/// Group labels are cut to this many characters (the full text is in each bar's tooltip).
const LABEL_CHARS: usize = 26;

pub fn render_svg(panels: &[Chart]) -> String {
    let width = panels
        .iter()
        .map(|p| LEFT + group_width(p) * p.groups.len() as f64 + 24.0)
        .fold(LEFT + MIN_PLOT_WIDTH + 24.0, f64::max);
    let height = PANEL_HEIGHT * panels.len() as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut out, panel, PANEL_HEIGHT * i as f64);
    }
    out.push_str("</svg>\n");
    out
}

/// A group's width: its bars and a gap, widened so that the plot is at least MIN_PLOT_WIDTH.
fn group_width(panel: &Chart) -> f64 {
    let natural = BAR * panel.series.len().max(1) as f64 + GROUP_GAP;
    natural.max(MIN_PLOT_WIDTH / panel.groups.len().max(1) as f64)
}

/// A slanted label ending under its group, so that long task names do not collide.
fn draw_group_label(out: &mut String, group: &str, lx: f64, ly: f64) {
    let label: String = if group.chars().count() > LABEL_CHARS {
        group.chars().take(LABEL_CHARS - 1).chain(['…']).collect()
    } else {
        group.to_string()
    };
    let _ = writeln!(
        out,
        "<text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\" transform=\"rotate(-30 {lx:.1} {ly:.1})\">{}</text>",
        escape(&label)
    );
}

/// One colour swatch and name per series, in a row under the title.
fn draw_legend(out: &mut String, series: &[String], top: f64) {
    let mut x = LEFT;
    for (s, name) in series.iter().enumerate() {
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            top + 30.0,
            COLORS[s % COLORS.len()],
            x + 14.0,
            top + 39.0,
            escape(name)
        );
        x += 24.0 + 7.0 * name.chars().count() as f64;
    }
}

fn draw_panel(out: &mut String, panel: &Chart, top: f64) {
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        top + 20.0,
        escape(&panel.title)
    );
    draw_legend(out, &panel.series, top);
    let data_max = panel.values.iter().flatten().flatten().copied().fold(0.0f64, f64::max);
    let (step, max) = nice_axis(panel.max.unwrap_or(data_max).max(data_max));
    let base = top + PLOT_TOP + PLOT_HEIGHT;
    let y_of = |v: f64| base - v / max * PLOT_HEIGHT;
    let right = LEFT + group_width(panel) * panel.groups.len() as f64;
    let mut tick = 0.0;
    while tick <= max + step * 1e-9 {
        let y = y_of(tick);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            trim_number(tick)
        );
        tick += step;
    }
    let bars_width = BAR * panel.series.len() as f64;
    for (g, group) in panel.groups.iter().enumerate() {
        let x0 = LEFT + group_width(panel) * g as f64 + (group_width(panel) - bars_width) / 2.0;
        for (s, values) in panel.values.iter().enumerate() {
            let Some(v) = values.get(g).copied().flatten() else {
                continue;
            };
            let x = x0 + BAR * s as f64;
            let y = y_of(v);
            let _ = writeln!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{}: {} = {}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"8\" text-anchor=\"middle\">{}</text>",
                BAR - 2.0,
                (base - y).max(0.0),
                COLORS[s % COLORS.len()],
                escape(&panel.series[s]),
                escape(group),
                trim_number(v),
                x + (BAR - 2.0) / 2.0,
                y - 3.0,
                short_number(v)
            );
        }
        draw_group_label(out, group, x0 + bars_width / 2.0, base + 14.0);
    }
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{base:.1}\" x2=\"{right:.1}\" y2=\"{base:.1}\" stroke=\"#333\"/>"
    );
}

/// (tick step, axis top): a 1-2-5 step giving at most 5 intervals.
fn nice_axis(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return (1.0, 1.0);
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step, (max / step).ceil() * step)
}

fn trim_number(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn short_number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round_and_text_is_escaped() {
        assert_eq!(nice_axis(100.0), (20.0, 100.0));
        assert_eq!(nice_axis(7.3), (2.0, 8.0));
        assert_eq!(nice_axis(0.0), (1.0, 1.0));
        let svg = render_svg(&[Chart {
            title: "a<b".into(),
            groups: vec!["arc_easy acc".into(), "piqa acc".into()],
            series: vec!["native".into(), "mqa".into()],
            values: vec![vec![Some(50.0), Some(60.0)], vec![Some(40.0), None]],
            max: Some(100.0),
        }]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
        // Three bars (one value missing), each with its tooltip.
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(svg.contains("<title>mqa: arc_easy acc = 40</title>"));
    }
}
