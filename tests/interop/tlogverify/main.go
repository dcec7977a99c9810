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
//	{"kind": "http", "url": "<sequencer base URL>", "api_key": "...", "tenant_id": "...", "store_id": "...",
//	 "vkey": "<expected verifier key>", "sequence_numbers": [n, ...], "earlier_note": "<signed note>"}
//	    Fetches over HTTP itself (net/http): GET /api/v1/ves/log/checkpoint (X-Log-Vkey must equal vkey; the
//	    note is opened and parsed as for "checkpoint"), then for each sequence number GET
//	    /api/v1/ves/log/inclusion/{n}?tree_size=N (leaf_hash must be RecordHash(entry), tlog.CheckRecord against
//	    the checkpoint's root), then, with earlier_note (opened with the same key, size M), GET
//	    /api/v1/ves/log/consistency?first=M&second=N and tlog.CheckTree. Result adds the checkpoint's "origin",
//	    "tree_size", "root" and "checked" (proofs verified).
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
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

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
	URL        string          `json:"url"`
	APIKey     string          `json:"api_key"`
	TenantID   string          `json:"tenant_id"`
	StoreID    string          `json:"store_id"`
	Sequences  []int64         `json:"sequence_numbers"`
	Earlier    string          `json:"earlier_note"`
}

type result struct {
	ID       json.RawMessage `json:"id,omitempty"`
	OK       bool            `json:"ok"`
	Error    string          `json:"error,omitempty"`
	Origin   string          `json:"origin,omitempty"`
	TreeSize *int64          `json:"tree_size,omitempty"`
	Root     string          `json:"root,omitempty"`
	Checked  int             `json:"checked,omitempty"`
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

var client = &http.Client{Timeout: 30 * time.Second}

func get(c testCase, path string, query url.Values) ([]byte, http.Header, error) {
	query.Set("tenant_id", c.TenantID)
	query.Set("store_id", c.StoreID)
	request, err := http.NewRequest("GET", c.URL+path+"?"+query.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	request.Header.Set("Authorization", "ApiKey "+c.APIKey)
	response, err := client.Do(request)
	if err != nil {
		return nil, nil, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return nil, nil, err
	}
	if response.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: status %d: %s", path, response.StatusCode, body)
	}
	return body, response.Header, nil
}

type servedProof struct {
	LeafIndex int64    `json:"leaf_index"`
	TreeSize  int64    `json:"tree_size"`
	Entry     string   `json:"entry"`
	LeafHash  string   `json:"leaf_hash"`
	First     int64    `json:"first"`
	Second    int64    `json:"second"`
	Proof     []string `json:"proof"`
}

func checkHTTP(c testCase) result {
	body, header, err := get(c, "/api/v1/ves/log/checkpoint", url.Values{})
	if err != nil {
		return result{Error: "http: " + err.Error()}
	}
	if header.Get("X-Log-Vkey") != c.Vkey {
		return result{Error: fmt.Sprintf("http: X-Log-Vkey %q is not the expected key", header.Get("X-Log-Vkey"))}
	}
	latest := checkCheckpoint(testCase{Note: string(body), Vkey: c.Vkey})
	if !latest.OK {
		return latest
	}
	size := *latest.TreeSize
	root, _ := parseHash(latest.Root)
	checked := 0
	for _, n := range c.Sequences {
		body, _, err := get(c, fmt.Sprintf("/api/v1/ves/log/inclusion/%d", n),
			url.Values{"tree_size": {fmt.Sprint(size)}})
		if err != nil {
			return result{Error: "http: " + err.Error()}
		}
		var served servedProof
		if err := json.Unmarshal(body, &served); err != nil {
			return result{Error: "http: inclusion body: " + err.Error()}
		}
		if served.LeafIndex != n-1 || served.TreeSize != size {
			return result{Error: fmt.Sprintf("http: inclusion %d: served for index %d size %d", n, served.LeafIndex,
				served.TreeSize)}
		}
		r := checkInclusion(testCase{Entry: served.Entry, LeafHash: served.LeafHash, Proof: served.Proof,
			TreeSize: size, Index: n - 1, Root: latest.Root})
		if !r.OK {
			return result{Error: fmt.Sprintf("http: sequence number %d: %s", n, r.Error)}
		}
		checked++
	}
	if c.Earlier != "" {
		earlier := checkCheckpoint(testCase{Note: c.Earlier, Vkey: c.Vkey})
		if !earlier.OK {
			return result{Error: "http: earlier " + earlier.Error}
		}
		m := *earlier.TreeSize
		body, _, err := get(c, "/api/v1/ves/log/consistency",
			url.Values{"first": {fmt.Sprint(m)}, "second": {fmt.Sprint(size)}})
		if err != nil {
			return result{Error: "http: " + err.Error()}
		}
		var served servedProof
		if err := json.Unmarshal(body, &served); err != nil {
			return result{Error: "http: consistency body: " + err.Error()}
		}
		proof, err := parseHashes(served.Proof)
		if err != nil {
			return result{Error: "http: consistency: " + err.Error()}
		}
		earlierRoot, _ := parseHash(earlier.Root)
		if err := tlog.CheckTree(proof, size, root, m, earlierRoot); err != nil {
			return result{Error: fmt.Sprintf("http: consistency %d -> %d: %s", m, size, err)}
		}
		checked++
	}
	return result{OK: true, Origin: latest.Origin, TreeSize: &size, Root: latest.Root, Checked: checked}
}

func check(c testCase) result {
	switch c.Kind {
	case "http":
		return checkHTTP(c)
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
