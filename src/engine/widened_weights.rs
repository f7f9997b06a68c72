//! Weights stored as float16 in the ONNX file (`models/fp16_storage.py`),
//! widened to float32 once, in the parsed file, before tract sees the graph.
//!
//! Why: the file widens each large weight with a `Cast` (and joins a weight
//! stored in slices with a `Concat` of the casts). tract folds those constant
//! nodes while it infers the graph's types, and its type inference evaluates
//! them as values more than once, each result held until the typed model is
//! made: for SFace the casts (38 MB of float32) and two copies of the joined
//! last layer (2 x 25.7 MB) were all alive at once, 92 of the 118 MB at the
//! peak of a tract start, and the evaluations took about a tenth of a second.
//! Done here, each weight exists once as float32 before tract reads it.
//!
//! The values are those tract computed: widening float16 to float32 is exact,
//! and joining along the first axis only places bytes one after another. A
//! node of any other shape (another target type, a `Concat` along another axis
//! or of an input that is not a weight, a weight also read elsewhere) is left
//! to tract as before.

use std::collections::HashMap;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto};
use tract_onnx::prelude::f16;

/// Widens the float16 weights of `model` that are only cast to float32, and
/// joins float32 weights that are only concatenated along their first axis:
/// the `Cast` and `Concat` nodes become float32 initializers. A weight is
/// dropped as soon as it is folded, so the float16 and float32 copies of the
/// weights are never all held at once.
pub(super) fn widen_stored_weights(model: &mut ModelProto) {
    let Some(graph) = model.graph.as_mut() else {
        return;
    };
    let mut readers = readers(graph);
    let mut weights: HashMap<String, TensorProto> = std::mem::take(&mut graph.initializer)
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    let nodes = std::mem::take(&mut graph.node);
    let mut kept = Vec::with_capacity(nodes.len());
    for node in nodes {
        let folded = match node.op_type.as_str() {
            "Cast" => widened(&mut weights, &node, &readers),
            "Concat" => joined(&mut weights, &node, &readers),
            _ => None,
        };
        let Some(weight) = folded else {
            kept.push(node);
            continue;
        };
        for input in &node.input {
            if let Some(count) = readers.get_mut(input) {
                *count -= 1;
            }
        }
        weights.insert(weight.name.clone(), weight);
    }
    graph.node = kept;
    let mut weights: Vec<TensorProto> = weights.into_values().collect();
    weights.sort_by(|a, b| a.name.cmp(&b.name));
    graph.initializer = weights;
}

/// How many nodes and graph outputs read each value.
fn readers(graph: &GraphProto) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    let names = graph.node.iter().flat_map(|n| n.input.iter());
    for name in names.chain(graph.output.iter().map(|o| &o.name)) {
        *count.entry(name.clone()).or_insert(0) += 1;
    }
    count
}

fn int_attribute(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// The weight `name`, of `data_type` with its data in `raw_data` (of
/// `item_bytes` per element), read by one node only.
fn sole_weight<'w>(
    weights: &'w HashMap<String, TensorProto>,
    readers: &HashMap<String, usize>,
    name: &str,
    data_type: DataType,
    item_bytes: usize,
) -> Option<&'w TensorProto> {
    let weight = weights.get(name)?;
    let elements = weight
        .dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))?;
    let plain = weight.data_type == data_type as i32
        && weight.raw_data.len() == elements.checked_mul(item_bytes)?
        && readers.get(name) == Some(&1);
    plain.then_some(weight)
}

/// `Cast(to=float)` of a float16 weight read by this node alone: the weight
/// widened, under the node's output name (the float16 copy is dropped).
fn widened(
    weights: &mut HashMap<String, TensorProto>,
    node: &NodeProto,
    readers: &HashMap<String, usize>,
) -> Option<TensorProto> {
    let ([input], [output]) = (node.input.as_slice(), node.output.as_slice()) else {
        return None;
    };
    if !node.domain.is_empty() || int_attribute(node, "to") != Some(DataType::Float as i64) {
        return None;
    }
    sole_weight(weights, readers, input, DataType::Float16, 2)?;
    let half = weights.remove(input)?;
    let raw_data = half
        .raw_data
        .chunks_exact(2)
        .flat_map(|bits| {
            f16::from_le_bytes([bits[0], bits[1]])
                .to_f32()
                .to_le_bytes()
        })
        .collect();
    Some(TensorProto {
        name: output.clone(),
        dims: half.dims,
        data_type: DataType::Float as i32,
        raw_data,
        ..Default::default()
    })
}

/// `Concat(axis=0)` of float32 weights, each read by this node alone, of the
/// same shape past the first axis: the joined weight under the node's output
/// name (the parts are dropped).
fn joined(
    weights: &mut HashMap<String, TensorProto>,
    node: &NodeProto,
    readers: &HashMap<String, usize>,
) -> Option<TensorProto> {
    let [output] = node.output.as_slice() else {
        return None;
    };
    if !node.domain.is_empty() || int_attribute(node, "axis") != Some(0) {
        return None;
    }
    let parts = node
        .input
        .iter()
        .map(|name| sole_weight(weights, readers, name, DataType::Float, 4))
        .collect::<Option<Vec<_>>>()?;
    let rest = &parts.first()?.dims.get(1..)?;
    if parts.iter().any(|p| p.dims.get(1..) != Some(rest)) {
        return None;
    }
    let rows = parts.iter().map(|p| p.dims[0]).sum();
    let bytes = parts.iter().map(|p| p.raw_data.len()).sum();
    let mut dims = parts[0].dims.clone();
    dims[0] = rows;
    let mut raw_data = Vec::with_capacity(bytes);
    for name in &node.input {
        raw_data.extend_from_slice(&weights.remove(name)?.raw_data);
    }
    Some(TensorProto {
        name: output.clone(),
        dims,
        data_type: DataType::Float as i32,
        raw_data,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::attribute_proto::AttributeType;
    use tract_onnx::pb::type_proto::{Tensor as TensorType, Value};
    use tract_onnx::pb::{
        tensor_shape_proto, AttributeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
        ValueInfoProto,
    };
    use tract_onnx::prelude::*;

    fn tensor(name: &str, dims: &[i64], data_type: DataType, raw_data: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        }
    }

    fn half_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
        let raw = values
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        tensor(name, dims, DataType::Float16, raw)
    }

    fn node(op: &str, inputs: &[&str], output: &str, attribute: Option<(&str, i64)>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attribute
                .map(|(name, i)| AttributeProto {
                    name: name.into(),
                    r#type: AttributeType::Int as i32,
                    i,
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims.iter().map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
            ..Default::default()
        });
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(Value::TensorType(TensorType {
                    elem_type: DataType::Float as i32,
                    shape: Some(TensorShapeProto { dim: dim.collect() }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `input (1 x 3) . weight (3 x 4) + bias`, the weight stored as two
    /// float16 slices widened and joined as `models/fp16_storage.py` writes
    /// them, the bias a float16 weight that a second node also reads.
    fn stored_model() -> ModelProto {
        let weights: Vec<f32> = (0..12).map(|i| (i as f32 - 5.3) / 7.1).collect();
        let bias = [0.1f32, -0.2, 0.3, 1e-3];
        let graph = GraphProto {
            initializer: vec![
                half_tensor("w__float16_0", &[2, 4], &weights[..8]),
                half_tensor("w__float16_1", &[1, 4], &weights[8..]),
                half_tensor("b__float16", &[4], &bias),
            ],
            node: vec![
                node("Cast", &["w__float16_0"], "w__part_0", Some(("to", 1))),
                node("Cast", &["w__float16_1"], "w__part_1", Some(("to", 1))),
                node(
                    "Concat",
                    &["w__part_0", "w__part_1"],
                    "w",
                    Some(("axis", 0)),
                ),
                node("Cast", &["b__float16"], "b", Some(("to", 1))),
                node("Cast", &["b__float16"], "b_again", Some(("to", 1))),
                node("MatMul", &["input", "w"], "product", None),
                node("Add", &["product", "b"], "sum", None),
                node("Add", &["sum", "b_again"], "output", None),
            ],
            input: vec![value("input", &[1, 3])],
            output: vec![value("output", &[1, 4])],
            ..Default::default()
        };
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(graph),
            ..Default::default()
        }
    }

    fn run(model: &ModelProto) -> Vec<u32> {
        let plan = onnx()
            .model_for_proto_model(model)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let input = Tensor::from_shape(&[1, 3], &[0.7f32, -1.3, 2.9]).unwrap();
        let out = plan.run(tvec!(input.into_tvalue())).unwrap();
        let values = out[0].to_plain_array_view::<f32>().unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn folded_weights_give_the_same_bits() {
        let stored = stored_model();
        let mut folded = stored.clone();
        widen_stored_weights(&mut folded);
        let graph = folded.graph.as_ref().unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        // The slices are widened and joined; the bias, read twice, is left.
        assert_eq!(ops, ["Cast", "Cast", "MatMul", "Add", "Add"]);
        let names: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b__float16", "w"]);
        let w = &graph.initializer[1];
        assert_eq!((w.dims.as_slice(), w.data_type), (&[3, 4][..], 1));
        assert_eq!(run(&folded), run(&stored));
    }

    #[test]
    fn other_casts_and_concats_are_left() {
        let mut model = stored_model();
        let graph = model.graph.as_mut().unwrap();
        // Widened to float64, and joined along the second axis.
        graph.node[0].attribute[0].i = DataType::Double as i64;
        graph.node[2].attribute[0].i = 1;
        let before = graph.node.len();
        widen_stored_weights(&mut model);
        let graph = model.graph.as_ref().unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        // Only the second slice's cast (float) is folded.
        assert_eq!(graph.node.len(), before - 1);
        assert_eq!(ops[..3], ["Cast", "Concat", "Cast"]);
    }
}
