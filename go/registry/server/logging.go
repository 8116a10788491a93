package server

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/sirupsen/logrus"
)

// configureLogging sets up logrus, which distribution logs through. It is
// process-global: the last Start's level applies to every Server.
func configureLogging(level string) {
	l, err := logrus.ParseLevel(level)
	if err != nil {
		l = logrus.WarnLevel
	}
	logrus.SetLevel(l)
	logrus.SetOutput(os.Stderr)
	logrus.SetFormatter(quietFormatter{
		inner:   &logrus.TextFormatter{TimestampFormat: time.RFC3339Nano},
		verbose: l >= logrus.InfoLevel,
	})
}

// quietFormatter drops what distribution logs at warning or error level but
// is routine for a registry: every 4xx answer (each push begins with HEADs
// that answer 404) is logged as an error, and a pull-through cache warns at
// start that it cannot delete. With info or debug nothing is dropped.
type quietFormatter struct {
	inner   logrus.Formatter
	verbose bool
}

var routineWarnings = map[string]bool{
	"Registry does not implement RepositoryRemover. Will not be able to delete repos and tags": true,
}

func (f quietFormatter) Format(e *logrus.Entry) ([]byte, error) {
	if !f.verbose && (routineWarnings[e.Message] || isClientError(e)) {
		// logrus writes what Format returns; nothing is written for nil.
		return nil, nil
	}
	return f.inner.Format(e)
}

func isClientError(e *logrus.Entry) bool {
	if e.Message != "response completed with error" {
		return false
	}
	status, ok := e.Data["http.response.status"].(int)
	return ok && status >= 400 && status < 500
}

// logrusHandler hands slog records (package mirrors logs through slog) to
// logrus, so that they take the registry's level and format.
type logrusHandler struct{ attrs []slog.Attr }

func logrusLevel(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	case l >= slog.LevelInfo:
		return logrus.InfoLevel
	}
	return logrus.DebugLevel
}

func (h logrusHandler) Enabled(_ context.Context, l slog.Level) bool {
	return logrus.IsLevelEnabled(logrusLevel(l))
}

func (h logrusHandler) Handle(_ context.Context, r slog.Record) error {
	fields := logrus.Fields{}
	add := func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Resolve().Any()
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	logrus.WithFields(fields).Log(logrusLevel(r.Level), r.Message)
	return nil
}

func (h logrusHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logrusHandler{attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

// WithGroup is not used by the code that logs here; groups are flattened.
func (h logrusHandler) WithGroup(string) slog.Handler { return h }
