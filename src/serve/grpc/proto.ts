// The KServe / Open Inference Protocol V2 gRPC definition (package `inference`), embedded so it ships inside dist/
// with no loose .proto file to lose. Field numbers follow kserve/open-inference-protocol open_inference_grpc.proto;
// Triton's extensions (triton-proto.ts) and ModelConfig join the same service and package.
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { MODEL_CONFIG_PROTO } from '../../triton/model-config-proto.js';
import { TRITON_MESSAGES, TRITON_RPCS } from './triton-proto.js';

/**
 * open_inference_grpc.proto (also kserve grpc_predict_v2.proto and Triton's GRPCInferenceService subset).
 * Do not renumber: tritonclient and the KServe SDK encode against these numbers.
 */
export const PREDICT_V2_PROTO = `syntax = "proto3";
package inference;

service GRPCInferenceService {
  rpc ServerLive(ServerLiveRequest) returns (ServerLiveResponse) {}
  rpc ServerReady(ServerReadyRequest) returns (ServerReadyResponse) {}
  rpc ModelReady(ModelReadyRequest) returns (ModelReadyResponse) {}
  rpc ServerMetadata(ServerMetadataRequest) returns (ServerMetadataResponse) {}
  rpc ModelMetadata(ModelMetadataRequest) returns (ModelMetadataResponse) {}
  rpc ModelInfer(ModelInferRequest) returns (ModelInferResponse) {}
${TRITON_RPCS}}

message ServerLiveRequest {}
message ServerLiveResponse { bool live = 1; }
message ServerReadyRequest {}
message ServerReadyResponse { bool ready = 1; }
message ModelReadyRequest { string name = 1; string version = 2; }
message ModelReadyResponse { bool ready = 1; }
message ServerMetadataRequest {}
message ServerMetadataResponse { string name = 1; string version = 2; repeated string extensions = 3; }
message ModelMetadataRequest { string name = 1; string version = 2; }
message ModelMetadataResponse {
  message TensorMetadata { string name = 1; string datatype = 2; repeated int64 shape = 3; }
  string name = 1;
  repeated string versions = 2;
  string platform = 3;
  repeated TensorMetadata inputs = 4;
  repeated TensorMetadata outputs = 5;
}

message ModelInferRequest {
  message InferInputTensor {
    string name = 1;
    string datatype = 2;
    repeated int64 shape = 3;
    map<string, InferParameter> parameters = 4;
    InferTensorContents contents = 5;
  }
  message InferRequestedOutputTensor {
    string name = 1;
    map<string, InferParameter> parameters = 2;
  }
  string model_name = 1;
  string model_version = 2;
  string id = 3;
  map<string, InferParameter> parameters = 4;
  repeated InferInputTensor inputs = 5;
  repeated InferRequestedOutputTensor outputs = 6;
  repeated bytes raw_input_contents = 7;
}

message ModelInferResponse {
  message InferOutputTensor {
    string name = 1;
    string datatype = 2;
    repeated int64 shape = 3;
    map<string, InferParameter> parameters = 4;
    InferTensorContents contents = 5;
  }
  string model_name = 1;
  string model_version = 2;
  string id = 3;
  map<string, InferParameter> parameters = 4;
  repeated InferOutputTensor outputs = 5;
  repeated bytes raw_output_contents = 6;
}

message InferParameter {
  oneof parameter_choice {
    bool bool_param = 1;
    int64 int64_param = 2;
    string string_param = 3;
    double double_param = 4;
    uint64 uint64_param = 5;
  }
}

message InferTensorContents {
  repeated bool bool_contents = 1;
  repeated int32 int_contents = 2;
  repeated int64 int64_contents = 3;
  repeated uint32 uint_contents = 4;
  repeated uint64 uint64_contents = 5;
  repeated float fp32_contents = 6;
  repeated double fp64_contents = 7;
  repeated bytes bytes_contents = 8;
}
`;

/**
 * The standard gRPC health checking protocol (grpc/grpc-proto grpc/health/v1/health.proto, doc/health-checking.md):
 * what Kubernetes gRPC probes call.
 */
export const HEALTH_PROTO = `syntax = "proto3";
package grpc.health.v1;

message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
message HealthListRequest {}
message HealthListResponse { map<string, HealthCheckResponse> statuses = 1; }
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc List(HealthListRequest) returns (HealthListResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
`;

/** Loader options shared by server and clients: snake_case field names as on the wire, int64 as JS numbers. */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

export const SERVICE_NAME = 'inference.GRPCInferenceService';

/** The whole `inference` package: the V2 core, Triton's extension messages and its ModelConfig, in one root. */
export function inferenceRoot(): protobuf.Root {
  const root = new protobuf.Root();
  protobuf.parse(PREDICT_V2_PROTO, root, { keepCase: true });
  protobuf.parse(`syntax = "proto3";\npackage inference;\n${TRITON_MESSAGES}`, root, { keepCase: true });
  protobuf.parse(MODEL_CONFIG_PROTO, root, { keepCase: true });
  root.resolveAll();
  return root;
}

/** The package definition for grpc-js, parsed from the embedded proto text. */
export function predictV2PackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.fromJSON(inferenceRoot().toJSON(), LOADER_OPTIONS);
}

/** The grpc.health.v1.Health service constructor. */
export function healthService(): grpc.ServiceClientConstructor {
  const root = protobuf.parse(HEALTH_PROTO, { keepCase: true }).root;
  const loaded = grpc.loadPackageDefinition(protoLoader.fromJSON(root.toJSON(), LOADER_OPTIONS)) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return loaded.grpc.health.v1.Health;
}

/** The service constructor (usable as a client class, or `.service` for a server). */
export function predictV2Service(): grpc.ServiceClientConstructor {
  const loaded = grpc.loadPackageDefinition(predictV2PackageDefinition()) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  return loaded.inference.GRPCInferenceService;
}

const UNDECODABLE = Symbol('mlctl.grpc.undecodable');

/**
 * A server-side copy of a service definition whose request deserializers never throw: bytes that are not the
 * method's protobuf message reach the handler as a marker (see undecodable()), so they are answered INVALID_ARGUMENT
 * like any other malformed request — grpc-js answers a throwing deserializer with INTERNAL.
 */
export function tolerantService(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) {
    const typeName = (method as { requestType?: { type?: { name?: string } } }).requestType?.type?.name ?? `${name} request`;
    const pkg = method.path.split('/')[1]?.split('.').slice(0, -1).join('.');
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          const why = ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 120);
          return { [UNDECODABLE]: `the ${pkg ? `${pkg}.` : ''}${typeName} message could not be decoded (${why}): send a protobuf-encoded ${typeName} as the proto defines it` };
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/** Why a request message from a tolerantService() did not decode; undefined for a decoded message. */
export function undecodable(request: unknown): string | undefined {
  return request && typeof request === 'object' ? (request as { [UNDECODABLE]?: string })[UNDECODABLE] : undefined;
}
