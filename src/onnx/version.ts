// The converter's version, apart from the converter so that cache lookups can name a conversion without loading
// TF.js (onnx/index.ts re-exports it; bump it whenever conversion output changes, which invalidates cached models).
export const CONVERTER_VERSION = '2';
