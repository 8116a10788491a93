package abi

// The pieces below are embedded by the request types; each request takes
// just the pieces its export uses.

// Control is what every request may carry, read before the request proper.
type Control struct {
	// TimeoutMS bounds the whole call; 0 or absent means no limit.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// OperationID lets other threads follow (OperationProgress) and cancel
	// (CancelOperation) this call.
	OperationID string `json:"operation_id,omitempty"`
	// LogLevel asks for the call's log records at this level and above
	// ("debug", "info", "warning", "error"); absent: none are made.
	LogLevel string `json:"log_level,omitempty"`
	// Events asks for the call's typed events (abi.Event), which come with
	// its progress reads and in its envelope.
	Events bool `json:"events,omitempty"`
}

// CallControl gives the control fields of any request that embeds Control.
func (c Control) CallControl() Control { return c }

// Environ is the caller's whole environment at call time: the Go runtime
// froze its own copy when the library loaded, so credentials, proxies, TLS
// roots and the default cache root are read from here.
type Environ struct {
	Env map[string]string `json:"env,omitempty"`
}

// Network is how the registry is reached.
type Network struct {
	CAFile             string   `json:"ca_file,omitempty"`
	InsecureRegistries []string `json:"insecure_registries,omitempty"`
	// Proxy is the proxy of every request, in place of HTTP(S)_PROXY
	// ("http://user:pass@host:port"; https and socks5 too).
	Proxy     string `json:"proxy,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Retries is how often one request is tried (0: the default, 5).
	Retries int `json:"retries,omitempty"`
	// Mirrors maps a registry ("docker.io", "host:port", "*") to mirror
	// URLs tried in order before it; an empty list turns its mirrors off.
	// Absent: OCI_CLIENT_MIRRORS, else hosts.toml, else registries.conf.
	Mirrors map[string][]string `json:"mirrors,omitempty"`
	// CertsDir is a certs.d directory (or several, ":"-separated) searched
	// before /etc/containerd/certs.d, /etc/docker/certs.d and
	// /etc/containers/certs.d. Absent: OCI_CLIENT_CERTS_DIR.
	CertsDir string `json:"certs_dir,omitempty"`
}

// Transfer tunes blob downloads (0: transfer's defaults).
type Transfer struct {
	Connections   int   `json:"connections,omitempty"`
	ChunkSize     int64 `json:"chunk_size,omitempty"`
	ReadTimeoutMS int64 `json:"read_timeout_ms,omitempty"`
	// DirectIO false writes blobs through the page cache, true with
	// O_DIRECT where the file system allows it (nil: the export's default).
	DirectIO *bool `json:"direct_io,omitempty"`
}

// Cache names the cache root: cache_dir, else $OCI_CLIENT_CACHE from env,
// else $HOME/.cache/oci-client.
type Cache struct {
	CacheDir string `json:"cache_dir,omitempty"`
}

// Blob is one blob of PullBlob(s).
type Blob struct {
	Digest string `json:"digest"`
	Path   string `json:"path"`
	// Size is the descriptor's size; <= 0 means unknown.
	Size int64 `json:"size,omitempty"`
	// Label names the blob in progress reports (default: the file name).
	Label string `json:"label,omitempty"`
}
