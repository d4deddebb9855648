package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// methodColors: one colour per table row, in methods' order.
var methodColors = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // heartbeat 10 s
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // heartbeat 1 s
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // probes
}

// writePlot draws one detection-time CDF per failure, side by side, every
// method a step line on a log time axis; its y is the fraction of all runs
// detected by then, so a method that missed runs never reaches 1 and one
// that detected nothing has no line (its legend says 0/N).
func writePlot(path string, o benchOpts, rs []result) error {
	var plots []*plot.Plot
	for _, f := range o.failures {
		p := plot.New()
		p.Title.Text = tableTitles[f]
		p.X.Label.Text = "detection time after the failure in the guest (ms, log scale)"
		p.Y.Label.Text = "fraction of runs detected"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = 0, 1.02
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		lo, hi := 0.0, 0.0
		for i, m := range methods(o) {
			ds, runs := detections(rs, f, m)
			label := fmt.Sprintf("%s: %d/%d", m.name, len(ds), runs)
			if len(ds) == 0 || runs == 0 {
				// Nothing to draw: the legend still says it never detected.
				p.Legend.Add(label+" (never)", &plotter.Line{LineStyle: draw.LineStyle{Color: methodColors[i], Width: vg.Points(2), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}})
				continue
			}
			slices.Sort(ds)
			pts := make(plotter.XYs, 0, len(ds)+1)
			first := msOf(ds[0])
			pts = append(pts, plotter.XY{X: first, Y: 0})
			for k, d := range ds {
				pts = append(pts, plotter.XY{X: msOf(d), Y: float64(k+1) / float64(runs)})
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.StepStyle = plotter.PostStep
			l.Color, l.Width = methodColors[i], vg.Points(2)
			p.Add(l)
			p.Legend.Add(label, l)
			if lo == 0 || first < lo {
				lo = first
			}
			hi = max(hi, msOf(ds[len(ds)-1]))
		}
		if lo > 0 {
			p.X.Min, p.X.Max = lo/2, max(hi*2, lo*10)
		} else {
			p.X.Min, p.X.Max = 0.1, float64(o.never/time.Millisecond)
		}
		plots = append(plots, p)
	}
	const w, h = 28 * vg.Centimeter, 12 * vg.Centimeter
	img := vgimg.New(w*vg.Length(len(plots))/2, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// msOf is d in milliseconds, at least a microsecond (a log axis has no 0).
func msOf(d time.Duration) float64 { return max(float64(d)/1e6, 1e-3) }
