// c2spcheck reads a por log the way a generic Go tlog client does, with Go's reference
// signed-note and tlog code (golang.org/x/mod/sumdb/note and .../tlog, from Debian's
// golang-golang-x-mod-dev), none of it written by the por project:
//
//	c2spcheck log URL VKEY ORIGIN [OLDSIZE OLDROOT_B64]
//	    GET URL/checkpoint, note.Open it with the log's vkey, compare the origin, read
//	    every hash tile through tlog.TileHashReader (which authenticates each tile against
//	    the checkpoint's root), check each entry of each entry bundle with an inclusion
//	    proof (tlog.ProveRecord / tlog.CheckRecord), check SHA-256 of each envelope is its
//	    entry, and with OLDSIZE a consistency proof (tlog.ProveTree / tlog.CheckTree).
//	    Prints "ok size=N entries=N cosignatures=NAME,..." (unverified lines by name).
//	c2spcheck note VKEY FILE...
//	    note.Open each file with the vkey; prints "<file> ok" or "<file> error: ...".
//
// Build offline in GOPATH mode: GO111MODULE=off GOPATH=/usr/share/gocode go build.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "c2spcheck: "+format+"\n", args...)
	os.Exit(1)
}

func get(url string) []byte {
	resp, err := http.Get(url)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		fail("GET %s: HTTP %d %v", url, resp.StatusCode, err)
	}
	return body
}

// c2spPath turns Go's sumdb tile path "tile/8/L/N[.p/W]" into C2SP's "tile/L/N[.p/W]".
func c2spPath(t tlog.Tile) string {
	return strings.Replace(t.Path(), "tile/8/", "tile/", 1)
}

type tiles struct{ base string }

func (r *tiles) Height() int { return 8 }
func (r *tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		out[i] = get(r.base + "/" + c2spPath(t))
	}
	return out, nil
}
func (r *tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func bundle(data []byte, lenBytes int) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < lenBytes {
			fail("truncated bundle")
		}
		var n int
		if lenBytes == 2 {
			n = int(binary.BigEndian.Uint16(data))
		} else {
			n = int(binary.BigEndian.Uint32(data))
		}
		data = data[lenBytes:]
		if len(data) < n {
			fail("truncated entry")
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func checkLog(base, vkey, origin string, oldArgs []string) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		fail("vkey: %v", err)
	}
	raw := get(base + "/checkpoint")
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 || lines[0] != origin {
		fail("origin %q, want %q", lines[0], origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || strconv.FormatInt(size, 10) != lines[1] {
		fail("bad size %q", lines[1])
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		fail("bad root %q", lines[2])
	}
	var root tlog.Hash
	copy(root[:], rootBytes)
	tree := tlog.Tree{N: size, Hash: root}
	hr := tlog.TileHashReader(tree, &tiles{base})
	th, err := tlog.TreeHash(size, hr)
	if err != nil || th != root {
		fail("TreeHash: %v (%v vs %v)", err, th, root)
	}
	entries := int64(0)
	for start := int64(0); start < size; start += 256 {
		w := size - start
		path := fmt.Sprintf("tile/entries/%s", c2spPath(tlog.Tile{H: 8, L: 0, N: start / 256, W: 256})[len("tile/0/"):])
		if w < 256 {
			path = fmt.Sprintf("tile/entries/%s", c2spPath(tlog.Tile{H: 8, L: 0, N: start / 256, W: int(w)})[len("tile/0/"):])
		}
		ents := bundle(get(base+"/"+path), 2)
		envs := bundle(get(base+"/"+strings.Replace(path, "entries", "envelopes", 1)), 4)
		if len(ents) != len(envs) {
			fail("%s: %d entries, %d envelopes", path, len(ents), len(envs))
		}
		for i, e := range ents {
			idx := start + int64(i)
			sum := sha256.Sum256(envs[i])
			if !bytes.Equal(sum[:], e) {
				fail("entry %d is not SHA-256 of its envelope", idx)
			}
			p, err := tlog.ProveRecord(size, idx, hr)
			if err != nil {
				fail("ProveRecord %d: %v", idx, err)
			}
			if err := tlog.CheckRecord(p, size, root, idx, tlog.RecordHash(e)); err != nil {
				fail("CheckRecord %d: %v", idx, err)
			}
			entries++
		}
	}
	if entries != size {
		fail("%d entries for size %d", entries, size)
	}
	if len(oldArgs) == 2 {
		old, err := strconv.ParseInt(oldArgs[0], 10, 64)
		if err != nil {
			fail("old size: %v", err)
		}
		ob, err := base64.StdEncoding.DecodeString(oldArgs[1])
		if err != nil || len(ob) != tlog.HashSize {
			fail("old root")
		}
		var oh tlog.Hash
		copy(oh[:], ob)
		p, err := tlog.ProveTree(size, old, hr)
		if err != nil {
			fail("ProveTree: %v", err)
		}
		if err := tlog.CheckTree(p, size, root, old, oh); err != nil {
			fail("CheckTree %d -> %d: %v", old, size, err)
		}
	}
	var others []string
	for _, s := range n.UnverifiedSigs {
		others = append(others, s.Name)
	}
	fmt.Printf("ok size=%d entries=%d cosignatures=%s\n", size, entries, strings.Join(others, ","))
}

func main() {
	if len(os.Args) >= 5 && os.Args[1] == "log" {
		checkLog(strings.TrimRight(os.Args[2], "/"), os.Args[3], os.Args[4], os.Args[5:])
		return
	}
	if len(os.Args) >= 4 && os.Args[1] == "note" {
		v, err := note.NewVerifier(os.Args[2])
		if err != nil {
			fail("vkey: %v", err)
		}
		for _, f := range os.Args[3:] {
			data, err := os.ReadFile(f)
			if err != nil {
				fail("%v", err)
			}
			if _, err := note.Open(data, note.VerifierList(v)); err != nil {
				fmt.Printf("%s error: %v\n", f, err)
			} else {
				fmt.Printf("%s ok\n", f)
			}
		}
		return
	}
	fail("usage: c2spcheck log URL VKEY ORIGIN [OLDSIZE OLDROOT] | note VKEY FILE...")
}
