package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colours that stay apart in print and for the common colour blindnesses
// (Okabe–Ito blue and orange).
var subjectColor = map[string]color.Color{
	subjectBaseline: color.RGBA{R: 0x00, G: 0x72, B: 0xb2, A: 0xff},
	subjectVeneur:   color.RGBA{R: 0xe6, G: 0x9f, B: 0x00, A: 0xff},
}

var subjectLabel = map[string]string{
	subjectBaseline: "baseline (nullrecv: recvmmsg, count lines)",
	subjectVeneur:   "veneur-lite (end to end, at the sink)",
}

// plotLoad draws one load's points as a PNG of three panels sharing the
// x axis (offered metrics/s): delivered rate, loss %, and CPU seconds per
// million metrics, each receiver as a line of medians with min–max bars.
func plotLoad(path string, l *load, ps []point, started time.Time, reps int) error {
	const mega = 1e6
	byS := map[string][]point{}
	for _, p := range ps {
		if p.Runs > 0 {
			byS[p.Subject] = append(byS[p.Subject], p)
		}
	}
	top := 0.0
	for _, p := range ps {
		top = max(top, p.Offered/mega)
	}

	how := fmt.Sprintf("medians of %d", reps)
	if reps == 1 {
		how = "single runs"
	}
	delivered := newPanel(fmt.Sprintf("%s — %s\n%s UTC, veneur-lite interval %v, %s, bars: min–max",
		l.Name, l.About, started.Format("2006-01-02 15:04"), l.Interval, how), "delivered, M metrics/s")
	ideal := plotter.NewFunction(func(x float64) float64 { return x })
	ideal.XMin, ideal.XMax = 0, top
	ideal.Color = color.Gray{Y: 0x99}
	ideal.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	delivered.Add(ideal)
	delivered.Legend.Add("offered", ideal)
	// What the sender achieved, for each receiver: below the dashed line,
	// the sender (not the receiver) set the rate, and on two cores a
	// receiver that takes more CPU leaves the sender less.
	for i, subj := range subjects {
		if sent := sentLine(byS[subj], subjectColor[subj]); sent != nil {
			delivered.Add(sent)
			if i == 0 {
				delivered.Legend.Add("sent (achieved), dotted, in the receiver's colour", sent)
			}
		}
	}
	loss := newPanel("", "end-to-end loss, %")
	cpu := newPanel("", "receiver CPU-s per M metrics")
	cpu.X.Label.Text = "offered, M metrics/s"
	// CPU per metric is highest at the lowest rates, where fixed costs
	// are shared by few metrics: keep the legend clear of them.
	cpu.Legend.Left = false

	for _, subj := range subjects {
		pts := byS[subj]
		if len(pts) == 0 {
			continue
		}
		if err := addSeries(delivered, subj, pts, func(p point) (float64, float64, float64) {
			return p.Delivered / mega, p.DeliveredMin / mega, p.DeliveredMax / mega
		}, true); err != nil {
			return err
		}
		if err := addSeries(loss, subj, pts, func(p point) (float64, float64, float64) {
			return p.LossPct, p.LossMin, p.LossMax
		}, false); err != nil {
			return err
		}
		if err := addSeries(cpu, subj, pts, func(p point) (float64, float64, float64) {
			return p.CPUPerMillion, p.CPUPerMillion, p.CPUPerMillion
		}, false); err != nil {
			return err
		}
	}
	for _, p := range []*plot.Plot{delivered, loss, cpu} {
		p.X.Min, p.X.Max = 0, top*1.05
		p.Y.Min = 0
	}
	loss.Y.Max = max(loss.Y.Max, 5) // a flat 0 % line stays readable as such
	// A 1 % guide on the loss panel: the threshold of the summary.
	guide := plotter.NewFunction(func(float64) float64 { return 1 })
	guide.XMin, guide.XMax = 0, top*1.05
	guide.Color = color.RGBA{R: 0xcc, A: 0xff}
	guide.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	loss.Add(guide)
	loss.Legend.Add("1 % loss", guide)

	const w, h = 8 * vg.Inch, 10 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(12), PadY: vg.Points(14)}
	plots := [][]*plot.Plot{{delivered}, {loss}, {cpu}}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot %s: %w", l.Name, err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", l.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot %s: %w", l.Name, err)
	}
	return nil
}

func newPanel(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.Text = ylabel
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	return p
}

// addSeries draws one receiver's medians as a line with points and, where
// runs differ, min–max error bars.
func addSeries(p *plot.Plot, subj string, ps []point, f func(point) (mid, lo, hi float64), legend bool) error {
	xys := make(plotter.XYs, 0, len(ps))
	errs := make(plotter.YErrors, 0, len(ps))
	for _, pt := range ps {
		mid, lo, hi := f(pt)
		if math.IsNaN(mid) {
			continue
		}
		xys = append(xys, plotter.XY{X: pt.Offered / 1e6, Y: mid})
		errs = append(errs, struct{ Low, High float64 }{max(mid-lo, 0), max(hi-mid, 0)})
	}
	if len(xys) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("plot %s: %w", subj, err)
	}
	line.Color, line.Width = subjectColor[subj], vg.Points(1.5)
	points.Color, points.Shape = subjectColor[subj], draw.CircleGlyph{}
	if subj == subjectVeneur {
		points.Shape = draw.TriangleGlyph{}
	}
	bars, err := plotter.NewYErrorBars(struct {
		plotter.XYs
		plotter.YErrors
	}{xys, errs})
	if err != nil {
		return fmt.Errorf("plot %s: %w", subj, err)
	}
	bars.Color = subjectColor[subj]
	p.Add(line, points, bars)
	label := subj
	if legend {
		label = subjectLabel[subj]
	}
	p.Legend.Add(label, line, points)
	return nil
}

// sentLine is the achieved send rate of one receiver's points.
func sentLine(ps []point, c color.Color) *plotter.Line {
	if len(ps) == 0 {
		return nil
	}
	xys := make(plotter.XYs, len(ps))
	for i, p := range ps {
		xys[i] = plotter.XY{X: p.Offered / 1e6, Y: p.SendRate / 1e6}
	}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return nil
	}
	line.Color = c
	line.Dashes = []vg.Length{vg.Points(1), vg.Points(2.5)}
	return line
}
