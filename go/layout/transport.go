package layout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// RoundTrip answers a request to a layout's host from its directory, as a
// read-only registry would: GET and HEAD of /v2/, of manifests by tag or
// digest and of blobs by digest (a single Range honoured).
func RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	dir, ok := root(req.URL.Hostname())
	if !ok {
		return nil, fmt.Errorf("%s: no OCI layout is open under this name", req.URL.Host)
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return answer(req, http.StatusMethodNotAllowed, "UNSUPPORTED", "an OCI layout is read only"), nil
	}
	path := req.URL.Path
	if path == "/v2/" || path == "/v2" {
		return serveBytes(req, http.StatusOK, "application/json", "", []byte("{}")), nil
	}
	prefix := "/v2/" + Repository + "/"
	if !strings.HasPrefix(path, prefix) {
		return answer(req, http.StatusNotFound, "NAME_UNKNOWN", "a layout holds the repository "+Repository+" only"), nil
	}
	kind, ref, _ := strings.Cut(strings.TrimPrefix(path, prefix), "/")
	switch kind {
	case "manifests":
		return manifest(req, dir, ref)
	case "blobs":
		if !digestPattern.MatchString(ref) {
			return answer(req, http.StatusBadRequest, "DIGEST_INVALID", "not a sha256 digest"), nil
		}
		return blob(req, dir, ref)
	}
	return answer(req, http.StatusNotFound, "UNSUPPORTED", "not a registry read"), nil
}

func manifest(req *http.Request, dir, ref string) (*http.Response, error) {
	idx, err := ReadIndex(dir)
	if err != nil {
		return nil, err
	}
	var d Descriptor
	if digestPattern.MatchString(ref) {
		d = Descriptor{Digest: ref}
		for _, m := range idx.Manifests {
			if m.Digest == ref {
				d = m
			}
		}
	} else if d, err = idx.find(ref); err != nil {
		return answer(req, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("index.json names no manifest %q", ref)), nil
	}
	path, err := BlobPath(dir, d.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", dir, err)
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return answer(req, http.StatusNotFound, "MANIFEST_UNKNOWN", "no such manifest in the layout"), nil
	} else if err != nil {
		return nil, err
	}
	mediaType := d.MediaType
	if mediaType == "" {
		var m struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(b, &m)
		mediaType = m.MediaType
	}
	// The digest is the file's name; the puller checks the bytes against it.
	return serveBytes(req, http.StatusOK, mediaType, d.Digest, b), nil
}

func blob(req *http.Request, dir, digest string) (*http.Response, error) {
	f, err := os.Open(blobPath(dir, digest))
	if os.IsNotExist(err) {
		return answer(req, http.StatusNotFound, "BLOB_UNKNOWN", "no such blob in the layout"), nil
	} else if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	size := st.Size()
	start, end, partial := byteRange(req.Header.Get("Range"), size)
	if start > end && partial {
		f.Close()
		resp := response(req, http.StatusRequestedRangeNotSatisfiable, nil, 0)
		resp.Header.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return resp, nil
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
	}
	var body io.ReadCloser = struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, start, end-start+1), f}
	if req.Method == http.MethodHead {
		f.Close()
		body = http.NoBody
	}
	resp := response(req, status, body, end-start+1)
	resp.Header.Set("Content-Type", "application/octet-stream")
	resp.Header.Set("Docker-Content-Digest", digest)
	resp.Header.Set("Accept-Ranges", "bytes")
	if partial {
		resp.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	}
	return resp, nil
}

// byteRange reads a single "bytes=a-b" or "bytes=a-" range; anything else
// (none, several, a suffix range) is the whole blob, which a registry may
// answer too.
func byteRange(h string, size int64) (start, end int64, partial bool) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size - 1, false
	}
	a, b, _ := strings.Cut(spec, "-")
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, size - 1, false
	}
	end = size - 1
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
			return 0, size - 1, false
		}
		end = min(end, size-1)
	}
	return start, end, true
}

func serveBytes(req *http.Request, status int, mediaType, digest string, b []byte) *http.Response {
	var body io.ReadCloser = io.NopCloser(bytes.NewReader(b))
	if req.Method == http.MethodHead {
		body = http.NoBody
	}
	resp := response(req, status, body, int64(len(b)))
	if mediaType != "" {
		resp.Header.Set("Content-Type", mediaType)
	}
	if digest != "" {
		resp.Header.Set("Docker-Content-Digest", digest)
	}
	return resp
}

// answer is a registry error: the status and a body of the distribution spec's shape.
func answer(req *http.Request, status int, code, message string) *http.Response {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
	return serveBytes(req, status, "application/json", "", b)
}

func response(req *http.Request, status int, body io.ReadCloser, length int64) *http.Response {
	if body == nil {
		body = http.NoBody
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          body,
		ContentLength: length,
		Request:       req,
	}
}
