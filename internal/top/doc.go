// Package top is "veneur-lite top": a live view of which metric names
// hold the series of a running instance, read from its GET /debug/series
// every interval (Client.Fetch), laid out by Render, and drawn on the
// terminal (or printed once, or as JSON). What it shows, its flags and its
// keys: cmd/veneur-lite/TOP.md.
package top
