// Command tlogverify checks transparency-log artefacts with Go's golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog, an implementation we did not write (LOG.md, "Independent implementations").
//
// It reads JSON cases from stdin (a stream of objects, e.g. one per line) and writes one JSON result per case
// to stdout, in order: {"id": ..., "ok": true|false, "error": "...", ...}. Kinds:
//
//	{"kind": "checkpoint", "note": "<signed note>", "vkey": "<verifier key>"}
//	    note.Open with note.NewVerifier(vkey), then the three checkpoint lines (origin, size, base64 root),
//	    size and root parsed by tlog.ParseTree; ok iff the log's signature verifies and the origin line equals
//	    the key name. Result adds "origin", "tree_size", "root" (hex).
//	{"kind": "tree", "entries": ["<hex entry>", ...], "root": "<hex>"}
//	    Stores every entry with tlog.StoredHashes and computes tlog.TreeHash; ok iff equal to root (n >= 1).
//	    Result adds "root" (hex, Go's).
//	{"kind": "inclusion", "index": i, "tree_size": n, "entry": "<hex>", "leaf_hash": "<hex>",
//	 "proof": ["<hex>", ...], "root": "<hex>"}
//	    tlog.CheckRecord(proof, n, root, i, tlog.RecordHash(entry)); when leaf_hash is given it must equal
//	    tlog.RecordHash(entry) too.
//	{"kind": "consistency", "first": m, "second": n, "first_root": "<hex>", "second_root": "<hex>",
//	 "proof": ["<hex>", ...]}
//	    tlog.CheckTree(proof, n, second_root, m, first_root) (Go defines it for 1 <= m <= n only).
//
// Build offline in GOPATH mode with Debian's golang-go and golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode:$TMP GOCACHE=$TMP/cache GOPROXY=off go build -o tlogverify main.go
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type testCase struct {
	ID         json.RawMessage `json:"id"`
	Kind       string          `json:"kind"`
	Note       string          `json:"note"`
	Vkey       string          `json:"vkey"`
	Entries    []string        `json:"entries"`
	Entry      string          `json:"entry"`
	LeafHash   string          `json:"leaf_hash"`
	Index      int64           `json:"index"`
	TreeSize   int64           `json:"tree_size"`
	First      int64           `json:"first"`
	Second     int64           `json:"second"`
	Root       string          `json:"root"`
	FirstRoot  string          `json:"first_root"`
	SecondRoot string          `json:"second_root"`
	Proof      []string        `json:"proof"`
}

type result struct {
	ID       json.RawMessage `json:"id,omitempty"`
	OK       bool            `json:"ok"`
	Error    string          `json:"error,omitempty"`
	Origin   string          `json:"origin,omitempty"`
	TreeSize *int64          `json:"tree_size,omitempty"`
	Root     string          `json:"root,omitempty"`
}

func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != tlog.HashSize {
		return h, fmt.Errorf("not a 32-byte hex hash: %q", s)
	}
	copy(h[:], raw)
	return h, nil
}

func parseHashes(list []string) ([]tlog.Hash, error) {
	hashes := make([]tlog.Hash, 0, len(list))
	for _, s := range list {
		h, err := parseHash(s)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, h)
	}
	return hashes, nil
}

func checkCheckpoint(c testCase) result {
	verifier, err := note.NewVerifier(c.Vkey)
	if err != nil {
		return result{Error: "verifier key: " + err.Error()}
	}
	n, err := note.Open([]byte(c.Note), note.VerifierList(verifier))
	if err != nil {
		return result{Error: "note: " + err.Error()}
	}
	origin, rest, found := strings.Cut(n.Text, "\n")
	if !found {
		return result{Error: "checkpoint: no origin line"}
	}
	if origin != verifier.Name() {
		return result{Error: fmt.Sprintf("checkpoint: origin %q is not the key name %q", origin, verifier.Name())}
	}
	tree, err := tlog.ParseTree([]byte("go.sum database tree\n" + rest))
	if err != nil {
		return result{Error: "checkpoint: " + err.Error()}
	}
	size := tree.N
	return result{OK: true, Origin: origin, TreeSize: &size, Root: hex.EncodeToString(tree.Hash[:])}
}

func checkTree(c testCase) result {
	if len(c.Entries) == 0 {
		return result{Error: "tree: Go's tlog defines no RFC 6962 hash for the empty tree"}
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			if index < 0 || index >= int64(len(stored)) {
				return nil, errors.New("tree: hash not stored")
			}
			out[i] = stored[index]
		}
		return out, nil
	})
	for i, s := range c.Entries {
		entry, err := hex.DecodeString(s)
		if err != nil {
			return result{Error: "tree: entry is not hex"}
		}
		hashes, err := tlog.StoredHashes(int64(i), entry, reader)
		if err != nil {
			return result{Error: "tree: " + err.Error()}
		}
		stored = append(stored, hashes...)
	}
	root, err := tlog.TreeHash(int64(len(c.Entries)), reader)
	if err != nil {
		return result{Error: "tree: " + err.Error()}
	}
	got := hex.EncodeToString(root[:])
	if got != c.Root {
		return result{Error: "tree: root differs", Root: got}
	}
	return result{OK: true, Root: got}
}

func checkInclusion(c testCase) result {
	entry, err := hex.DecodeString(c.Entry)
	if err != nil {
		return result{Error: "inclusion: entry is not hex"}
	}
	leaf := tlog.RecordHash(entry)
	if c.LeafHash != "" && c.LeafHash != hex.EncodeToString(leaf[:]) {
		return result{Error: "inclusion: leaf_hash is not RecordHash(entry)"}
	}
	root, err := parseHash(c.Root)
	if err != nil {
		return result{Error: "inclusion: " + err.Error()}
	}
	proof, err := parseHashes(c.Proof)
	if err != nil {
		return result{Error: "inclusion: " + err.Error()}
	}
	if err := tlog.CheckRecord(proof, c.TreeSize, root, c.Index, leaf); err != nil {
		return result{Error: "inclusion: " + err.Error()}
	}
	return result{OK: true}
}

func checkConsistency(c testCase) result {
	first, err := parseHash(c.FirstRoot)
	if err != nil {
		return result{Error: "consistency: " + err.Error()}
	}
	second, err := parseHash(c.SecondRoot)
	if err != nil {
		return result{Error: "consistency: " + err.Error()}
	}
	proof, err := parseHashes(c.Proof)
	if err != nil {
		return result{Error: "consistency: " + err.Error()}
	}
	if err := tlog.CheckTree(proof, c.Second, second, c.First, first); err != nil {
		return result{Error: "consistency: " + err.Error()}
	}
	return result{OK: true}
}

func check(c testCase) result {
	switch c.Kind {
	case "checkpoint":
		return checkCheckpoint(c)
	case "tree":
		return checkTree(c)
	case "inclusion":
		return checkInclusion(c)
	case "consistency":
		return checkConsistency(c)
	}
	return result{Error: fmt.Sprintf("unknown kind %q", c.Kind)}
}

func main() {
	decoder := json.NewDecoder(bufio.NewReader(os.Stdin))
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	for {
		var c testCase
		if err := decoder.Decode(&c); err == io.EOF {
			return
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "tlogverify: bad input:", err)
			out.Flush()
			os.Exit(2)
		}
		r := check(c)
		r.ID = c.ID
		if err := encoder.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "tlogverify:", err)
			os.Exit(2)
		}
	}
}
