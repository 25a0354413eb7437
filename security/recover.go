package security

import (
	"context"
	"runtime/debug"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recovered logs a handler panic and turns it into codes.Internal. The
// client learns which method failed but not the panic value, which may
// hold internal state; the log has the value and the stack.
func recovered(log *zap.Logger, method string, v any) error {
	log.Error("gRPC handler panicked", zap.String("method", method),
		zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
	return status.Errorf(codes.Internal, "security: internal error in %s (the server recovered from a panic; see its log)", method)
}

// recoverUnary and recoverStream keep a panicking handler from crashing
// the server. They cannot catch a panic in a goroutine the handler starts.
func recoverUnary(log *zap.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if v := recover(); v != nil {
				resp, err = nil, recovered(log, info.FullMethod, v)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log *zap.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = recovered(log, info.FullMethod, v)
			}
		}()
		return handler(srv, ss)
	}
}
