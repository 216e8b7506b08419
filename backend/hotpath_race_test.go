//go:build race

package backend

// raceEnabled: under -race, sync.Pool drops items at random (regexp keeps its
// matchers in one), so allocation counts are not what a normal build does.
const raceEnabled = true
