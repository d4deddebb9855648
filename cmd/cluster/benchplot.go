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
	var panels []cdfPanel
	for _, f := range o.failures {
		p := cdfPanel{title: tableTitles[f], xLabel: "detection time after the failure in the guest (ms, log scale)", empty: o.never}
		for _, m := range methods(o) {
			ds, runs := detections(rs, f, m)
			p.series = append(p.series, cdfSeries{name: m.name, ds: ds, runs: runs})
		}
		panels = append(panels, p)
	}
	return writeCDFs(path, panels)
}

// cdfPanel is one plot of writeCDFs: a CDF per series.
type cdfPanel struct {
	title, xLabel string
	series        []cdfSeries
	empty         time.Duration // the x axis's end when no series has a point
}

// cdfSeries is one line: ds out of runs runs.
type cdfSeries struct {
	name string
	ds   []time.Duration
	runs int
}

// writeCDFs draws the panels side by side as a PNG at path: every series
// a step line on a log time axis (ms), its y the fraction of all runs by
// then, in methodColors' order.
func writeCDFs(path string, panels []cdfPanel) error {
	var plots []*plot.Plot
	for _, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = pn.xLabel
		p.Y.Label.Text = "fraction of runs"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = 0, 1.02
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		lo, hi := 0.0, 0.0
		for i, sr := range pn.series {
			c := methodColors[i%len(methodColors)]
			label := fmt.Sprintf("%s: %d/%d", sr.name, len(sr.ds), sr.runs)
			if len(sr.ds) == 0 || sr.runs == 0 {
				// Nothing to draw: the legend still says it never happened.
				p.Legend.Add(label+" (never)", &plotter.Line{LineStyle: draw.LineStyle{Color: c, Width: vg.Points(2), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}})
				continue
			}
			ds := slices.Clone(sr.ds)
			slices.Sort(ds)
			pts := make(plotter.XYs, 0, len(ds)+1)
			first := msOf(ds[0])
			pts = append(pts, plotter.XY{X: first, Y: 0})
			for k, d := range ds {
				pts = append(pts, plotter.XY{X: msOf(d), Y: float64(k+1) / float64(sr.runs)})
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.StepStyle = plotter.PostStep
			l.Color, l.Width = c, vg.Points(2)
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
			p.X.Min, p.X.Max = 0.1, max(float64(pn.empty/time.Millisecond), 1)
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
