package server

import (
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
