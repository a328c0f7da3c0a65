package chattest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// PNG is a w×h PNG picture (a gradient), for uploads. The same size gives
// the same bytes.
func PNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{R: uint8(x), G: uint8(y), B: 200, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("chattest: encode a PNG: " + err.Error()) // an in-memory RGBA image always encodes
	}
	return buf.Bytes()
}
