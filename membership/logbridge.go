package membership

import (
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
)

// logBridge is the io.Writer behind memberlist's *log.Logger. memberlist
// writes lines such as "[DEBUG] memberlist: Stream connection from=…"; each
// becomes one zap Debug entry whose message drops the "memberlist:" prefix and
// whose ml_level field keeps memberlist's own level. memberlist logs routine
// events (failed probes of a dead node, refused merges) at WARN and ERR, so
// none of it is promoted: this package logs what matters itself.
type logBridge struct{ l atomic.Pointer[zap.Logger] }

func newLogBridge(l *zap.Logger) *logBridge {
	w := new(logBridge)
	w.l.Store(l)
	return w
}

func (w *logBridge) Write(p []byte) (int, error) {
	l := w.l.Load()
	if !l.Core().Enabled(zap.DebugLevel) {
		return len(p), nil
	}
	msg := strings.TrimSpace(string(p))
	level := ""
	if strings.HasPrefix(msg, "[") {
		if i := strings.IndexByte(msg, ']'); i > 0 {
			level, msg = msg[1:i], strings.TrimSpace(msg[i+1:])
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	l.Debug(msg, zap.String("ml_level", level))
	return len(p), nil
}
