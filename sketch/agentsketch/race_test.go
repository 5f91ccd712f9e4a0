//go:build race

package agentsketch

const raceEnabled = true
