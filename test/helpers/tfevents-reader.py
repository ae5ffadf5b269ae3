"""An independent reader of TensorBoard event files for the tests: TFRecord framing checked with a bitwise
(table-less) CRC-32C, events decoded by Google's protobuf runtime from descriptors written here with the field
numbers of tensorboard/compat/proto/event.proto, summary.proto, tensor.proto and plugins/hparams/plugin_data.proto.
Prints one JSON document: {file: [event, ...]} for every events file under the folder given."""
import json, os, struct, sys
from google.protobuf import descriptor_pb2, descriptor_pool, struct_pb2, text_format
from google.protobuf import message_factory

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

SCHEMA = """
name: "mlctl_test_tb.proto" package: "tbtest" dependency: "google/protobuf/struct.proto" syntax: "proto3"
message_type { name: "Event"
  field { name: "wall_time" number: 1 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
  field { name: "step" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
  field { name: "file_version" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "summary" number: 5 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tbtest.Summary" } }
message_type { name: "PluginData"
  field { name: "plugin_name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "content" number: 2 label: LABEL_OPTIONAL type: TYPE_BYTES } }
message_type { name: "SummaryMetadata"
  field { name: "plugin_data" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tbtest.PluginData" }
  field { name: "data_class" number: 4 label: LABEL_OPTIONAL type: TYPE_INT32 } }
message_type { name: "Dim" field { name: "size" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 } }
message_type { name: "TensorShapeProto" field { name: "dim" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tbtest.Dim" } }
message_type { name: "TensorProto"
  field { name: "dtype" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "tensor_shape" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tbtest.TensorShapeProto" }
  field { name: "string_val" number: 8 label: LABEL_REPEATED type: TYPE_BYTES } }
message_type { name: "Value"
  field { name: "tag" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "simple_value" number: 2 label: LABEL_OPTIONAL type: TYPE_FLOAT oneof_index: 0 }
  field { name: "tensor" number: 8 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tbtest.TensorProto" oneof_index: 0 }
  field { name: "metadata" number: 9 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tbtest.SummaryMetadata" }
  oneof_decl { name: "value" } }
message_type { name: "Summary" field { name: "value" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tbtest.Value" } }
message_type { name: "SessionStartInfo"
  field { name: "hparams" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".tbtest.SessionStartInfo.HparamsEntry" }
  field { name: "model_uri" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "group_name" number: 4 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "start_time_secs" number: 5 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
  nested_type { name: "HparamsEntry" options { map_entry: true }
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".google.protobuf.Value" } } }
message_type { name: "SessionEndInfo"
  field { name: "status" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "end_time_secs" number: 2 label: LABEL_OPTIONAL type: TYPE_DOUBLE } }
message_type { name: "HParamsPluginData"
  field { name: "version" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "session_start_info" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tbtest.SessionStartInfo" }
  field { name: "session_end_info" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".tbtest.SessionEndInfo" } }
"""

pool = descriptor_pool.Default()
fd = text_format.Parse(SCHEMA, descriptor_pb2.FileDescriptorProto())
pool.Add(fd)
def cls(name):
    d = pool.FindMessageTypeByName("tbtest." + name)
    return message_factory.GetMessageClass(d) if hasattr(message_factory, "GetMessageClass") else message_factory.MessageFactory(pool).GetPrototype(d)
Event, HParams = cls("Event"), cls("HParamsPluginData")

def value_json(v):
    out = {"tag": v.tag}
    if v.HasField("simple_value"): out["simple_value"] = v.simple_value
    if v.HasField("metadata") and v.metadata.HasField("plugin_data"):
        pd = v.metadata.plugin_data
        out["plugin"] = pd.plugin_name
        if pd.plugin_name == "hparams":
            h = HParams.FromString(pd.content)
            out["hparams_version"] = h.version
            if h.HasField("session_start_info"):
                s = h.session_start_info
                hp = {}
                for k, val in s.hparams.items():
                    kind = val.WhichOneof("kind")
                    hp[k] = getattr(val, kind)
                out["session_start_info"] = {"hparams": hp, "group_name": s.group_name, "start_time_secs": s.start_time_secs}
            if h.HasField("session_end_info"):
                out["session_end_info"] = {"status": h.session_end_info.status, "end_time_secs": h.session_end_info.end_time_secs}
    if v.HasField("tensor"):
        out["dtype"] = v.tensor.dtype
        out["text"] = [s.decode("utf-8") for s in v.tensor.string_val]
    return out

def read(path):
    events = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data): raise SystemExit("%s: truncated header at %d" % (path, pos))
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(header) != len_crc: raise SystemExit("%s: bad length CRC at %d" % (path, pos))
        body = data[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if len(body) != length or masked(body) != data_crc: raise SystemExit("%s: bad data CRC at %d" % (path, pos))
        pos += 16 + length
        e = Event.FromString(body)
        ev = {"wall_time": e.wall_time, "step": e.step}
        if e.file_version: ev["file_version"] = e.file_version
        if e.HasField("summary"): ev["values"] = [value_json(v) for v in e.summary.value]
        events.append(ev)
    return events

root = sys.argv[1]
out = {}
for d, _, files in os.walk(root):
    for name in sorted(files):
        if "tfevents" in name:
            out[os.path.relpath(os.path.join(d, name), root)] = read(os.path.join(d, name))
print(json.dumps(out))
