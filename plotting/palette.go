package plotting

import (
	"cmp"
	"image"
	"image/color"
	"slices"
)

// paletted maps img to a palette of 256 colours, each pixel to the nearest
// of them (in RGB): first the colours in must (the line colours, so thin
// lines keep their exact colour), then the most frequent colours of the
// image. A chart is mostly a few flat colours, so this keeps it sharp
// while its PNG shrinks several times; antialiased edges and band overlaps
// snap to the nearest shade. Deterministic: ties in frequency break by
// colour value.
func paletted(img image.Image, must ...color.Color) *image.Paletted {
	b := img.Bounds()
	counts := map[color.RGBA]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[rgba(img.At(x, y))]++
		}
	}
	colors := make([]color.RGBA, 0, len(counts))
	for c := range counts {
		colors = append(colors, c)
	}
	key := func(c color.RGBA) uint32 { return uint32(c.R)<<24 | uint32(c.G)<<16 | uint32(c.B)<<8 | uint32(c.A) }
	slices.SortFunc(colors, func(a, b color.RGBA) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(key(a), key(b))
	})
	pal := make(color.Palette, 0, 256)
	in := map[color.RGBA]bool{}
	for _, c := range must {
		if q := rgba(c); !in[q] && len(pal) < 256 {
			in[q] = true
			pal = append(pal, q)
		}
	}
	for _, c := range colors {
		if len(pal) == 256 {
			break
		}
		if !in[c] {
			in[c] = true
			pal = append(pal, c)
		}
	}
	index := make(map[color.RGBA]uint8, len(colors))
	for _, c := range colors {
		best, bestD := 0, -1
		for i, p := range pal {
			q := p.(color.RGBA)
			dr, dg, db, da := int(c.R)-int(q.R), int(c.G)-int(q.G), int(c.B)-int(q.B), int(c.A)-int(q.A)
			if d := dr*dr + dg*dg + db*db + da*da; bestD < 0 || d < bestD {
				best, bestD = i, d
			}
		}
		index[c] = uint8(best)
	}
	out := image.NewPaletted(b, pal)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.SetColorIndex(x, y, index[rgba(img.At(x, y))])
		}
	}
	return out
}

func rgba(c color.Color) color.RGBA {
	r, g, b, a := c.RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}
