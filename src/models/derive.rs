//! Models derived from shipped ones: a named, deterministic rewrite of an ONNX graph, applied to
//! the verified bytes of the shipped file when the model is loaded, its result verified by a
//! second sha256 (`[model.derive]` in the manifest). No derived file is written or fetched:
//! the shipped file stays the one thing a user copies, and the rewrite is code in this module,
//! pinned by the derived sha256 so that it cannot drift.
//!
//! Every recipe changes how a graph computes, never what: its outputs are the shipped graph's
//! (tests compare them), so a derived model keeps the shipped model's id. Recipes:
//!
//! - [`Recipe::WindowsOverTime`]: a network that embeds one fixed window of frames, fully
//!   convolutional along time (every time convolution "valid", the poolings' time strides
//!   multiplying to the window step), run once over a whole sequence: its first `Reshape`
//!   takes any number of frames, and its outputs are the windows' embeddings at the window
//!   step, equal to embedding each window on its own — without recomputing the overlap of
//!   neighbouring windows. Used for the speech embedding (76-frame windows every 8 frames).
//! - [`Recipe::PreluAsRelu`]: every `PRelu(x, slope)` computed as `r + slope · (x − r)` with
//!   `r = Relu(x)` — the same value for every x (x for x ≥ 0, slope · x below), but from
//!   operators ONNX Runtime runs in its blocked convolution layout, where its `PRelu` kernel
//!   broadcasts the per-channel slope slowly (measured on MiniFASNet: `PRelu` was half of the
//!   model's time; 3.7 → 2.0 ms per 80×80 crop).
//! - [`Recipe::InitializersNotInputs`]: the weights of an old export listed as graph inputs as
//!   well as initializers are inputs no more (only their initializers stay). An input with a
//!   default can be fed by the caller, so ONNX Runtime may not fold it into constants; as
//!   plain initializers they are constants (SFace, exported from MXNet: every weight was an
//!   input; 37 ms per face as shipped).
//!
//! The rewrite edits protobuf fields in place ([`Message`]): every field it does not touch
//! keeps its bytes and its order.

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// A rewrite of a shipped model and the sha256 of its result (`[model.derive]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Derivation {
    /// Which rewrite.
    pub recipe: Recipe,
    /// Further rewrites applied after it, in order. By default, none.
    #[serde(default)]
    pub then: Vec<Recipe>,
    /// Lowercase hex sha256 of the rewritten model.
    pub sha256: String,
}

impl Derivation {
    /// The model rewritten by `recipe`, then by each of `then`.
    pub fn apply(&self, model: &[u8]) -> Result<Vec<u8>> {
        let mut derived = self.recipe.apply(model)?;
        for recipe in &self.then {
            derived = recipe.apply(&derived)?;
        }
        Ok(derived)
    }

    /// The recipes' names, joined by " then ".
    pub fn describe(&self) -> String {
        std::iter::once(self.recipe)
            .chain(self.then.iter().copied())
            .map(Recipe::name)
            .collect::<Vec<_>>()
            .join(" then ")
    }
}

/// The rewrites this library knows.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// A per-window network run once over a whole sequence of frames (see the module docs).
    WindowsOverTime,
    /// `PRelu` as `Relu`, `Sub`, `Mul` and `Add` (see the module docs).
    PreluAsRelu,
    /// Weights listed as graph inputs too are initializers only (see the module docs).
    InitializersNotInputs,
}

impl Recipe {
    /// The recipe's name in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::WindowsOverTime => "windows_over_time",
            Recipe::PreluAsRelu => "prelu_as_relu",
            Recipe::InitializersNotInputs => "initializers_not_inputs",
        }
    }

    /// The rewritten model, or [`ErrorKind::ModelContract`] when the graph is not the shape
    /// the recipe rewrites.
    pub fn apply(self, model: &[u8]) -> Result<Vec<u8>> {
        match self {
            Recipe::WindowsOverTime => windows_over_time(model),
            Recipe::PreluAsRelu => prelu_as_relu(model),
            Recipe::InitializersNotInputs => initializers_not_inputs(model),
        }
    }
}

// Field numbers of onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto,
// TypeProto, TypeProto.Tensor, TensorShapeProto, TensorShapeProto.Dimension).
const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_NAME: u32 = 3;
const NODE_OP_TYPE: u32 = 4;
const TENSOR_DIMS: u32 = 1;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_INT64_DATA: u32 = 7;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
const VALUE_INFO_NAME: u32 = 1;
const VALUE_INFO_TYPE: u32 = 2;
const TYPE_TENSOR: u32 = 1;
const TENSOR_TYPE_SHAPE: u32 = 2;
const SHAPE_DIM: u32 = 1;
const DIM_VALUE: u32 = 1;
const DIM_PARAM: u32 = 2;
const INT64: u64 = 7;

fn contract(message: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::ModelContract,
        format!("cannot derive the model: {}", message.into()),
    )
}

/// The first `Reshape` takes `[1, 1, frames, bands]` instead of `[batch, 1, window, bands]`,
/// and the graph input's window dimension becomes `frames`. The final layers are left as they
/// are: the last convolution's `[1, C, windows, 1]` is flattened channel by channel, which
/// the caller reads back (see `crate::voice::speech_embedding`).
fn windows_over_time(model: &[u8]) -> Result<Vec<u8>> {
    let mut top = Message::parse(model)?;
    let mut graph = Message::parse(top.only_bytes(MODEL_GRAPH)?)?;
    let initializers: Vec<Message> = graph
        .bytes_of(GRAPH_INITIALIZER)
        .map(Message::parse)
        .collect::<Result<_>>()?;
    let names: Vec<String> = initializers
        .iter()
        .map(|t| t.string(TENSOR_NAME))
        .collect::<Result<_>>()?;
    // The graph's data input: the one input that is not an initializer.
    let input_index = graph
        .indices(GRAPH_INPUT)
        .find(|&i| {
            Message::parse(graph.bytes_at(i))
                .and_then(|v| v.string(VALUE_INFO_NAME))
                .is_ok_and(|n| !names.contains(&n))
        })
        .ok_or_else(|| contract("the graph has no data input"))?;
    let mut input = Message::parse(graph.bytes_at(input_index))?;
    let input_name = input.string(VALUE_INFO_NAME)?;
    let window = set_time_dimension(&mut input)?;
    graph.set_bytes_at(input_index, input.encode());

    let reshape = graph
        .bytes_of(GRAPH_NODE)
        .map(Message::parse)
        .find(|node| {
            node.as_ref().is_ok_and(|n| {
                n.string(NODE_OP_TYPE).is_ok_and(|op| op == "Reshape")
                    && n.strings(NODE_INPUT).first() == Some(&input_name)
            })
        })
        .ok_or_else(|| contract("no Reshape reads the graph input"))??;
    let shape_name = reshape
        .strings(NODE_INPUT)
        .get(1)
        .cloned()
        .ok_or_else(|| contract("the first Reshape has no shape input"))?;
    let position = names
        .iter()
        .position(|n| *n == shape_name)
        .ok_or_else(|| contract("the first Reshape's shape is not a constant"))?;
    let shape = int64_values(&initializers[position])?;
    // [batch, channels = 1, window, bands] → [1, 1, any frames, bands].
    let [-1, 1, w, bands] = shape[..] else {
        return Err(contract(format!(
            "the first Reshape makes {shape:?}, not [-1, 1, window, bands]"
        )));
    };
    if w != window {
        return Err(contract(format!(
            "the first Reshape's window {w} is not the input's {window}"
        )));
    }
    let mut tensor = initializers[position].clone();
    tensor.remove(TENSOR_INT64_DATA);
    tensor.remove(TENSOR_RAW_DATA);
    let raw: Vec<u8> = [1i64, 1, -1, bands]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    tensor.push_bytes(TENSOR_RAW_DATA, raw);
    let initializer_index = graph
        .indices(GRAPH_INITIALIZER)
        .nth(position)
        .ok_or_else(|| contract("initializers changed while rewriting"))?;
    graph.set_bytes_at(initializer_index, tensor.encode());

    top.set_only_bytes(MODEL_GRAPH, graph.encode())?;
    Ok(top.encode())
}

/// Replaces each `PRelu(x, slope) → y` node by `r = Relu(x)`, `d = Sub(x, r)`,
/// `m = Mul(d, slope)`, `y = Add(r, m)`, in its place in the node order (the graph stays
/// topologically sorted). A graph without `PRelu` is refused: the recipe names a model that
/// has them.
fn prelu_as_relu(model: &[u8]) -> Result<Vec<u8>> {
    let mut top = Message::parse(model)?;
    let mut graph = Message::parse(top.only_bytes(MODEL_GRAPH)?)?;
    let mut fields = Vec::with_capacity(graph.fields.len());
    let mut rewritten = 0usize;
    for (number, value) in std::mem::take(&mut graph.fields) {
        let Value::Bytes(bytes) = &value else {
            fields.push((number, value));
            continue;
        };
        if number != GRAPH_NODE {
            fields.push((number, value));
            continue;
        }
        let node = Message::parse(bytes)?;
        if node.string(NODE_OP_TYPE)? != "PRelu" {
            fields.push((number, value));
            continue;
        }
        let (inputs, outputs) = (node.strings(NODE_INPUT), node.strings(NODE_OUTPUT));
        let ([x, slope], [y]) = (inputs.as_slice(), outputs.as_slice()) else {
            return Err(contract(
                "a PRelu node without one input, one slope and one output",
            ));
        };
        let base = format!("{y}__prelu{rewritten}");
        let (r, d, m) = (
            format!("{base}_relu"),
            format!("{base}_neg"),
            format!("{base}_scaled"),
        );
        for (op, ins, out) in [
            ("Relu", vec![x.as_str()], r.as_str()),
            ("Sub", vec![x.as_str(), r.as_str()], d.as_str()),
            ("Mul", vec![d.as_str(), slope.as_str()], m.as_str()),
            ("Add", vec![r.as_str(), m.as_str()], y.as_str()),
        ] {
            let mut new = Message::default();
            for input in ins {
                new.push_bytes(NODE_INPUT, input.as_bytes().to_vec());
            }
            new.push_bytes(NODE_OUTPUT, out.as_bytes().to_vec());
            new.push_bytes(NODE_NAME, format!("{base}_{op}").into_bytes());
            new.push_bytes(NODE_OP_TYPE, op.as_bytes().to_vec());
            fields.push((GRAPH_NODE, Value::Bytes(new.encode())));
        }
        rewritten += 1;
    }
    if rewritten == 0 {
        return Err(contract("the graph has no PRelu to rewrite"));
    }
    graph.fields = fields;
    top.set_only_bytes(MODEL_GRAPH, graph.encode())?;
    Ok(top.encode())
}

/// Drops every graph input whose name is an initializer's; a graph with none is refused (the
/// recipe names a model that has them), and so is one left without any input.
fn initializers_not_inputs(model: &[u8]) -> Result<Vec<u8>> {
    let mut top = Message::parse(model)?;
    let mut graph = Message::parse(top.only_bytes(MODEL_GRAPH)?)?;
    let mut weights = std::collections::HashSet::new();
    for tensor in graph.bytes_of(GRAPH_INITIALIZER) {
        weights.insert(Message::parse(tensor)?.string(TENSOR_NAME)?);
    }
    let (mut dropped, mut kept) = (0usize, 0usize);
    let mut fields = Vec::with_capacity(graph.fields.len());
    for (number, value) in std::mem::take(&mut graph.fields) {
        if number == GRAPH_INPUT
            && let Value::Bytes(bytes) = &value
        {
            if weights.contains(&Message::parse(bytes)?.string(VALUE_INFO_NAME)?) {
                dropped += 1;
                continue;
            }
            kept += 1;
        }
        fields.push((number, value));
    }
    if dropped == 0 {
        return Err(contract("no graph input is an initializer"));
    }
    if kept == 0 {
        return Err(contract("every graph input is an initializer"));
    }
    graph.fields = fields;
    top.set_only_bytes(MODEL_GRAPH, graph.encode())?;
    Ok(top.encode())
}

/// Makes the input's second dimension (the window, a fixed number of frames) open, named
/// `frames`; returns the window it had.
fn set_time_dimension(input: &mut Message) -> Result<i64> {
    let mut typ = Message::parse(input.only_bytes(VALUE_INFO_TYPE)?)?;
    let mut tensor = Message::parse(typ.only_bytes(TYPE_TENSOR)?)?;
    let mut shape = Message::parse(tensor.only_bytes(TENSOR_TYPE_SHAPE)?)?;
    let dim_index = shape
        .indices(SHAPE_DIM)
        .nth(1)
        .ok_or_else(|| contract("the input has fewer than two dimensions"))?;
    let mut dim = Message::parse(shape.bytes_at(dim_index))?;
    let window = match dim.varints(DIM_VALUE).first() {
        Some(&v) if v > 0 => v as i64,
        _ => {
            return Err(contract(
                "the input's window is not a fixed number of frames",
            ));
        }
    };
    dim.remove(DIM_VALUE);
    dim.push_bytes(DIM_PARAM, b"frames".to_vec());
    shape.set_bytes_at(dim_index, dim.encode());
    tensor.set_only_bytes(TENSOR_TYPE_SHAPE, shape.encode())?;
    typ.set_only_bytes(TYPE_TENSOR, tensor.encode())?;
    input.set_only_bytes(VALUE_INFO_TYPE, typ.encode())?;
    Ok(window)
}

/// An int64 tensor's values, from `raw_data` or `int64_data`.
fn int64_values(tensor: &Message) -> Result<Vec<i64>> {
    if tensor.varints(TENSOR_DATA_TYPE).first() != Some(&INT64) {
        return Err(contract("a shape constant is not int64"));
    }
    let count: u64 = tensor.packed_varints(TENSOR_DIMS)?.iter().product();
    let values: Vec<i64> = match tensor.bytes_of(TENSOR_RAW_DATA).next() {
        Some(raw) if raw.len() % 8 == 0 => raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        Some(_) => return Err(contract("an int64 constant's bytes are not whole values")),
        None => tensor
            .packed_varints(TENSOR_INT64_DATA)?
            .into_iter()
            .map(|v| v as i64)
            .collect(),
    };
    if values.len() as u64 != count {
        return Err(contract("a constant's values do not fill its dimensions"));
    }
    Ok(values)
}

/// One protobuf field as read from the wire.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(Vec<u8>),
    Fixed32([u8; 4]),
}

/// A protobuf message as its fields in wire order, nested messages left as bytes until a
/// rewrite opens them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Message {
    fields: Vec<(u32, Value)>,
}

fn truncated() -> Error {
    contract("the ONNX file is truncated or not a protobuf message")
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or_else(truncated)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(truncated())
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

impl Message {
    fn parse(bytes: &[u8]) -> Result<Message> {
        let mut fields = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let key = read_varint(bytes, &mut at)?;
            let number = u32::try_from(key >> 3).map_err(|_| truncated())?;
            let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
                let end = at.checked_add(n).filter(|&e| e <= bytes.len());
                let end = end.ok_or_else(truncated)?;
                let slice = &bytes[*at..end];
                *at = end;
                Ok(slice)
            };
            let value = match key & 7 {
                0 => Value::Varint(read_varint(bytes, &mut at)?),
                1 => Value::Fixed64(take(&mut at, 8)?.try_into().map_err(|_| truncated())?),
                2 => {
                    let len =
                        usize::try_from(read_varint(bytes, &mut at)?).map_err(|_| truncated())?;
                    Value::Bytes(take(&mut at, len)?.to_vec())
                }
                5 => Value::Fixed32(take(&mut at, 4)?.try_into().map_err(|_| truncated())?),
                other => return Err(contract(format!("protobuf wire type {other}"))),
            };
            fields.push((number, value));
        }
        Ok(Message { fields })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, value) in &self.fields {
            let key = u64::from(*number) << 3;
            match value {
                Value::Varint(v) => {
                    write_varint(&mut out, key);
                    write_varint(&mut out, *v);
                }
                Value::Fixed64(b) => {
                    write_varint(&mut out, key | 1);
                    out.extend_from_slice(b);
                }
                Value::Bytes(b) => {
                    write_varint(&mut out, key | 2);
                    write_varint(&mut out, b.len() as u64);
                    out.extend_from_slice(b);
                }
                Value::Fixed32(b) => {
                    write_varint(&mut out, key | 5);
                    out.extend_from_slice(b);
                }
            }
        }
        out
    }

    /// Positions of the fields numbered `number`.
    fn indices(&self, number: u32) -> impl Iterator<Item = usize> + '_ {
        self.fields
            .iter()
            .enumerate()
            .filter(move |(_, (n, _))| *n == number)
            .map(|(i, _)| i)
    }

    fn bytes_of(&self, number: u32) -> impl Iterator<Item = &[u8]> + '_ {
        self.fields.iter().filter_map(move |(n, v)| match v {
            Value::Bytes(b) if *n == number => Some(b.as_slice()),
            _ => None,
        })
    }

    fn bytes_at(&self, index: usize) -> &[u8] {
        match &self.fields[index].1 {
            Value::Bytes(b) => b,
            _ => &[],
        }
    }

    fn set_bytes_at(&mut self, index: usize, bytes: Vec<u8>) {
        self.fields[index].1 = Value::Bytes(bytes);
    }

    /// The one length-delimited field numbered `number`.
    fn only_bytes(&self, number: u32) -> Result<&[u8]> {
        let mut found = self.bytes_of(number);
        match (found.next(), found.next()) {
            (Some(b), None) => Ok(b),
            _ => Err(contract(format!("expected one field {number}"))),
        }
    }

    fn set_only_bytes(&mut self, number: u32, bytes: Vec<u8>) -> Result<()> {
        let index = self
            .indices(number)
            .next()
            .ok_or_else(|| contract(format!("expected one field {number}")))?;
        self.set_bytes_at(index, bytes);
        Ok(())
    }

    fn string(&self, number: u32) -> Result<String> {
        let bytes = self.only_bytes(number)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| contract("a name is not UTF-8"))
    }

    fn strings(&self, number: u32) -> Vec<String> {
        self.bytes_of(number)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    fn varints(&self, number: u32) -> Vec<u64> {
        self.fields
            .iter()
            .filter_map(|(n, v)| match v {
                Value::Varint(x) if *n == number => Some(*x),
                _ => None,
            })
            .collect()
    }

    /// A repeated varint field, packed or not.
    fn packed_varints(&self, number: u32) -> Result<Vec<u64>> {
        let mut values = self.varints(number);
        for packed in self.bytes_of(number) {
            let mut at = 0;
            while at < packed.len() {
                values.push(read_varint(packed, &mut at)?);
            }
        }
        Ok(values)
    }

    fn remove(&mut self, number: u32) {
        self.fields.retain(|(n, _)| *n != number);
    }

    fn push_bytes(&mut self, number: u32, bytes: Vec<u8>) {
        self.fields.push((number, Value::Bytes(bytes)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, u64::from(number) << 3 | 2);
        write_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(bytes);
        out
    }

    fn varint_field(number: u32, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, u64::from(number) << 3);
        write_varint(&mut out, value);
        out
    }

    /// A tiny graph shaped like the speech embedding's: input `x` [?, 76, 32, 1], a Reshape by
    /// the constant `s` = [-1, 1, 76, 32].
    fn tiny_model(shape: [i64; 4]) -> Vec<u8> {
        let dim = |v: Option<u64>| match v {
            Some(v) => field(SHAPE_DIM, &varint_field(DIM_VALUE, v)),
            None => field(SHAPE_DIM, &field(DIM_PARAM, b"batch")),
        };
        let shape_msg: Vec<u8> = [dim(None), dim(Some(76)), dim(Some(32)), dim(Some(1))].concat();
        let tensor_type = [varint_field(1, 1), field(TENSOR_TYPE_SHAPE, &shape_msg)].concat();
        let input = [
            field(VALUE_INFO_NAME, b"x"),
            field(VALUE_INFO_TYPE, &field(TYPE_TENSOR, &tensor_type)),
        ]
        .concat();
        let raw: Vec<u8> = shape.iter().flat_map(|v| v.to_le_bytes()).collect();
        let init = [
            varint_field(TENSOR_DIMS, 4),
            varint_field(TENSOR_DATA_TYPE, INT64),
            field(TENSOR_NAME, b"s"),
            field(TENSOR_RAW_DATA, &raw),
        ]
        .concat();
        let node = [
            field(NODE_INPUT, b"x"),
            field(NODE_INPUT, b"s"),
            field(2, b"y"),
            field(NODE_OP_TYPE, b"Reshape"),
        ]
        .concat();
        let graph = [
            field(GRAPH_NODE, &node),
            field(GRAPH_INITIALIZER, &init),
            field(GRAPH_INPUT, &input),
        ]
        .concat();
        [varint_field(1, 7), field(MODEL_GRAPH, &graph)].concat()
    }

    #[test]
    fn messages_round_trip_byte_for_byte() {
        let model = tiny_model([-1, 1, 76, 32]);
        assert_eq!(Message::parse(&model).unwrap().encode(), model);
    }

    #[test]
    fn windows_over_time_opens_the_time_axis() {
        let derived = Recipe::WindowsOverTime
            .apply(&tiny_model([-1, 1, 76, 32]))
            .unwrap();
        let top = Message::parse(&derived).unwrap();
        let graph = Message::parse(top.only_bytes(MODEL_GRAPH).unwrap()).unwrap();
        let init = Message::parse(graph.bytes_of(GRAPH_INITIALIZER).next().unwrap()).unwrap();
        assert_eq!(int64_values(&init).unwrap(), [1, 1, -1, 32]);
        let input = Message::parse(graph.bytes_of(GRAPH_INPUT).next().unwrap()).unwrap();
        let typ = Message::parse(input.only_bytes(VALUE_INFO_TYPE).unwrap()).unwrap();
        let tensor = Message::parse(typ.only_bytes(TYPE_TENSOR).unwrap()).unwrap();
        let shape = Message::parse(tensor.only_bytes(TENSOR_TYPE_SHAPE).unwrap()).unwrap();
        let dims: Vec<Message> = shape
            .bytes_of(SHAPE_DIM)
            .map(|d| Message::parse(d).unwrap())
            .collect();
        assert_eq!(dims[1].string(DIM_PARAM).unwrap(), "frames");
        assert_eq!(dims[2].varints(DIM_VALUE), [32]);
        // Deterministic: the same bytes every time.
        assert_eq!(
            Recipe::WindowsOverTime
                .apply(&tiny_model([-1, 1, 76, 32]))
                .unwrap(),
            derived
        );
    }

    #[test]
    fn prelu_nodes_become_relu_sub_mul_add_in_place() {
        let prelu = [
            field(NODE_INPUT, b"x"),
            field(NODE_INPUT, b"slope"),
            field(NODE_OUTPUT, b"y"),
            field(NODE_OP_TYPE, b"PRelu"),
        ]
        .concat();
        let after = [
            field(NODE_INPUT, b"y"),
            field(NODE_OUTPUT, b"z"),
            field(NODE_OP_TYPE, b"Relu"),
        ]
        .concat();
        let graph = [
            field(GRAPH_NODE, &prelu),
            field(GRAPH_NODE, &after),
            field(GRAPH_INPUT, b"unchanged"),
        ]
        .concat();
        let model = [varint_field(1, 7), field(MODEL_GRAPH, &graph)].concat();
        let derived = Recipe::PreluAsRelu.apply(&model).unwrap();
        let top = Message::parse(&derived).unwrap();
        let graph = Message::parse(top.only_bytes(MODEL_GRAPH).unwrap()).unwrap();
        let nodes: Vec<(String, Vec<String>, Vec<String>)> = graph
            .bytes_of(GRAPH_NODE)
            .map(|n| {
                let n = Message::parse(n).unwrap();
                (
                    n.string(NODE_OP_TYPE).unwrap(),
                    n.strings(NODE_INPUT),
                    n.strings(NODE_OUTPUT),
                )
            })
            .collect();
        let ops: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(ops, ["Relu", "Sub", "Mul", "Add", "Relu"]);
        let r = &nodes[0].2[0];
        assert_eq!(nodes[0].1, ["x"]);
        assert_eq!(nodes[1].1, ["x".to_string(), r.clone()]);
        assert_eq!(nodes[2].1[1], "slope");
        assert_eq!(nodes[3].1, [r.clone(), nodes[2].2[0].clone()]);
        assert_eq!(nodes[3].2, ["y"], "the PRelu's output keeps its name");
        assert_eq!(nodes[4].1, ["y"]);
        assert_eq!(graph.bytes_of(GRAPH_INPUT).next().unwrap(), b"unchanged");
        // A graph without PRelu is not the model the recipe was written for.
        let err = Recipe::PreluAsRelu
            .apply(&tiny_model([-1, 1, 76, 32]))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ModelContract);
    }

    #[test]
    fn graphs_of_another_shape_are_refused() {
        for bad in [[-1, 1, 70, 32], [1, 1, 76, 32], [-1, 2, 76, 32]] {
            let err = Recipe::WindowsOverTime.apply(&tiny_model(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ModelContract, "{bad:?}: {err}");
        }
        let model = tiny_model([-1, 1, 76, 32]);
        for cut in [1, model.len() / 2, model.len() - 1] {
            let err = Recipe::WindowsOverTime.apply(&model[..cut]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ModelContract);
        }
        assert!(Recipe::WindowsOverTime.apply(b"not onnx").is_err());
    }

    #[test]
    fn initializers_listed_as_inputs_become_constants() {
        let model = tiny_model([1, 1, 76, 32]);
        assert!(
            Recipe::InitializersNotInputs.apply(&model).is_err(),
            "no input is a weight"
        );
        // The same graph with its weight "s" listed as an input too, before and after "x".
        let mut top = Message::parse(&model).unwrap();
        let mut graph = Message::parse(top.only_bytes(MODEL_GRAPH).unwrap()).unwrap();
        let weight_input = field(VALUE_INFO_NAME, b"s");
        graph.push_bytes(GRAPH_INPUT, weight_input.clone());
        graph
            .fields
            .insert(0, (GRAPH_INPUT, Value::Bytes(weight_input)));
        top.set_only_bytes(MODEL_GRAPH, graph.encode()).unwrap();
        let listed = top.encode();
        let derived = Recipe::InitializersNotInputs.apply(&listed).unwrap();
        let graph = Message::parse(
            Message::parse(&derived)
                .unwrap()
                .only_bytes(MODEL_GRAPH)
                .unwrap(),
        )
        .unwrap();
        let inputs: Vec<String> = graph
            .bytes_of(GRAPH_INPUT)
            .map(|b| Message::parse(b).unwrap().string(VALUE_INFO_NAME).unwrap())
            .collect();
        assert_eq!(inputs, ["x"]);
        assert_eq!(
            derived, model,
            "everything else kept, byte for byte and in order"
        );
    }
}
