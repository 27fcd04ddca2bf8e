package envoy

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. The server sends them to Envoy as gRPC statuses whose
// message starts with the sentinel's text and goes on with what to change;
// Envoy then fails the HTTP request (500) unless failure_mode_allow is set.
var (
	// ErrMissingPath: a request_headers message without a :path header
	// (InvalidArgument). Envoy always sends :path for HTTP requests; a
	// CONNECT request has none, so keep ext_proc off for CONNECT routes.
	ErrMissingPath = errors.New("request_headers without :path")
	// ErrMissingMethod: a request_headers message without :method
	// (InvalidArgument).
	ErrMissingMethod = errors.New("request_headers without :method")
	// ErrUnexpectedMessage: a message for a phase the server never asks
	// for — a request or response body or trailers — or a second
	// request_headers on one stream (FailedPrecondition). The filter's
	// processing_mode must send request headers only.
	ErrUnexpectedMessage = errors.New("unexpected message")
	// ErrUnknownRequest: a ProcessingRequest whose request oneof is empty
	// or of a kind this server does not know (InvalidArgument). Other
	// unknown fields are ignored, as proto3 wants, so that a newer Envoy's
	// additions do not break the server.
	ErrUnknownRequest = errors.New("processing request of unknown type")
	// ErrObservabilityMode: a message sent in observability_mode
	// (FailedPrecondition). Envoy would ignore the answer and forward the
	// like to the app as well, so likes refuses to act on it.
	ErrObservabilityMode = errors.New("observability_mode is not supported")
)

// grpcErrors are the gRPC statuses of the sentinels, built once so that a
// refused message costs no allocation.
type grpcErrors struct {
	missingPath, missingMethod, observability, unknown, secondHeaders error
	internal                                                          error
	requestBody, responseBody, requestTrailers, responseTrailers      error
}

func newGRPCErrors() grpcErrors {
	phase := func(name string) error {
		return status.Error(codes.FailedPrecondition, ErrUnexpectedMessage.Error()+": "+name+
			" was not asked for; set the ext_proc filter's processing_mode to request_header_mode: SEND, "+
			"response_header_mode: SKIP, request_body_mode: NONE, response_body_mode: NONE, "+
			"request_trailer_mode: SKIP, response_trailer_mode: SKIP")
	}
	return grpcErrors{
		missingPath:      status.Error(codes.InvalidArgument, ErrMissingPath.Error()),
		internal:         status.Error(codes.Internal, "likes: internal error answering the request (logged)"),
		missingMethod:    status.Error(codes.InvalidArgument, ErrMissingMethod.Error()),
		observability:    status.Error(codes.FailedPrecondition, ErrObservabilityMode.Error()+": likes answers like requests itself; set observability_mode: false"),
		unknown:          status.Error(codes.InvalidArgument, ErrUnknownRequest.Error()+": want request_headers (or response_headers)"),
		secondHeaders:    status.Error(codes.FailedPrecondition, ErrUnexpectedMessage.Error()+": request_headers twice on one stream"),
		requestBody:      phase("request_body"),
		responseBody:     phase("response_body"),
		requestTrailers:  phase("request_trailers"),
		responseTrailers: phase("response_trailers"),
	}
}

func (e *grpcErrors) forHeaders(err error) error {
	if errors.Is(err, ErrMissingMethod) {
		return e.missingMethod
	}
	return e.missingPath
}
