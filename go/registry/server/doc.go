// Package server runs a CNCF distribution registry (distribution/v3) with
// filesystem storage on a listener of its own, so that port 0 works and the
// real address is known: the core of the oci-registry program that the
// oci_client wheel ships for `oci-client serve` and the demo.
//
// It is a program of its own, not part of liboci: liboci is loaded into every
// vLLM worker, one process can hold only one Go runtime, and a separate process
// can outlive the Python one that started it (demo --keep). Measured on a
// 2-vCPU machine (2026-12, Go 1.26, distribution v3.1.2):
//
//   - liboci.so 9.1 MB; oci-registry 23.5 MB (static, stripped); one c-shared
//     library holding both 27.9 MB, loaded into every worker for nothing, and
//     its non-standard packages grow from 84 to 408.
//   - spawn to the first 200 on /v2/: median 15 ms of 10 (Debian's
//     docker-registry 2.8: 29 ms); idle RSS 18.5 MiB (docker-registry 21.4).
//   - one 512 MiB blob over loopback with curl: push 318 MiB/s, pull 1364 MiB/s
//     (docker-registry 2.8: 179 and 1326), medians of 3.
//
// The configuration is built in code, not with configuration.Parse, so that
// REGISTRY_* variables in the environment cannot change it. The bind address
// must be loopback unless Config.AllowRemote: there is no authentication.
package server
