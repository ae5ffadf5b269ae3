// The subset of TensorBoard's protos that mlctl writes, with the owners' field numbers: Event and Summary
// (tensorboard/compat/proto/event.proto, summary.proto, tensor.proto, tensor_shape.proto) and the HParams plugin's
// data (tensorboard/plugins/hparams/plugin_data.proto, api.proto's Status; google.protobuf.Value from struct.proto).
import protobuf from 'protobufjs';

// A JSON descriptor (map fields carry keyType, which the IField typing leaves out).
const descriptor: protobuf.INamespace = {
  nested: {
    tensorboard: {
      nested: {
        Event: {
          fields: {
            wallTime: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            fileVersion: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        SummaryMetadata: {
          fields: {
            pluginData: { type: 'PluginData', id: 1 },
            displayName: { type: 'string', id: 2 },
            summaryDescription: { type: 'string', id: 3 },
            dataClass: { type: 'int32', id: 4 },
          },
          nested: { PluginData: { fields: { pluginName: { type: 'string', id: 1 }, content: { type: 'bytes', id: 2 } } } },
        },
        TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'Dim', id: 2 } }, nested: { Dim: { fields: { size: { type: 'int64', id: 1 } } } } },
        TensorProto: {
          fields: {
            dtype: { type: 'int32', id: 1 },
            tensorShape: { type: 'TensorShapeProto', id: 2 },
            stringVal: { rule: 'repeated', type: 'bytes', id: 8 },
          },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
          nested: {
            Value: {
              fields: {
                tag: { type: 'string', id: 1 },
                simpleValue: { type: 'float', id: 2 },
                tensor: { type: 'TensorProto', id: 8 },
                metadata: { type: 'SummaryMetadata', id: 9 },
              },
            },
          },
        },
        hparams: {
          nested: {
            HParamsPluginData: {
              fields: {
                version: { type: 'int32', id: 1 },
                sessionStartInfo: { type: 'SessionStartInfo', id: 3 },
                sessionEndInfo: { type: 'SessionEndInfo', id: 4 },
              },
            },
            SessionStartInfo: {
              fields: {
                hparams: { keyType: 'string', type: 'google.protobuf.Value', id: 1 },
                modelUri: { type: 'string', id: 2 },
                groupName: { type: 'string', id: 4 },
                startTimeSecs: { type: 'double', id: 5 },
              },
            },
            SessionEndInfo: { fields: { status: { type: 'int32', id: 1 }, endTimeSecs: { type: 'double', id: 2 } } },
          },
        },
      },
    },
    google: {
      nested: {
        protobuf: {
          nested: {
            Value: {
              oneofs: { kind: { oneof: ['nullValue', 'numberValue', 'stringValue', 'boolValue'] } },
              fields: {
                nullValue: { type: 'int32', id: 1 },
                numberValue: { type: 'double', id: 2 },
                stringValue: { type: 'string', id: 3 },
                boolValue: { type: 'bool', id: 4 },
              },
            },
          },
        },
      },
    },
  },
} as unknown as protobuf.INamespace;

const root = protobuf.Root.fromJSON(descriptor);

export const Event = root.lookupType('tensorboard.Event');
export const HParamsPluginData = root.lookupType('tensorboard.hparams.HParamsPluginData');

/** tensorflow DataType DT_STRING; SummaryMetadata DataClass values. */
export const DT_STRING = 7;
export const DATA_CLASS = { SCALAR: 1, TENSOR: 2 } as const;
/** tensorboard.hparams.Status (api.proto). */
export const SESSION_STATUS = { UNKNOWN: 0, SUCCESS: 1, FAILURE: 2, RUNNING: 3 } as const;
