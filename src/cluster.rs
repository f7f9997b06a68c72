//! Clustering faces by person: every pair of embeddings within a distance
//! threshold becomes an edge of a sparse graph, and chinese whispers (Biemann
//! 2006, the algorithm of dlib's `chinese_whispers_clustering`) labels its nodes.
//!
//! # Edges
//!
//! The pairs come from the gallery's exact range search ([`search::within`]): the
//! rows are packed into panels once, then cut into blocks of probes; block `b`
//! searches only the panels from its own first row onwards, so each pair is
//! computed about once, on every core, with the same SIMD kernels and the same
//! distances as `Gallery.search_within`. A block's hits are bounded by its size
//! times the rows, and the whole graph by [`MAX_EDGES`], so memory stays bounded
//! whatever the threshold: a threshold so loose that it links almost everything
//! is an error that says so, not an exhausted machine.
//!
//! # Chinese whispers
//!
//! Every node starts in a cluster of its own. A sweep visits the nodes in a
//! shuffled order and moves each to the label with the largest vote among its
//! neighbours and itself (each edge one vote, as dlib's recipe counts them; ties
//! to the smallest label). Sweeps repeat until one changes nothing, at most
//! [`MAX_SWEEPS`] times. The shuffle comes from a fixed seed, so the same input
//! always gives the same clusters.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::search::{self, panels, squared_norm, Block, Isa, PanelView, PANEL};

/// Largest number of pairs within the threshold the graph may hold (16 bytes
/// each once stored in both directions: 1.6 GB at the limit).
pub const MAX_EDGES: usize = 100_000_000;

/// Chinese whispers stops after this many sweeps even if labels still move
/// (dlib's default number of iterations).
pub const MAX_SWEEPS: usize = 100;

/// Hits one probe block may return at most (rows x block size); 2^24 hits are
/// 128 MiB of search results.
const BLOCK_HITS: usize = 1 << 24;

/// Seed of the visiting order: fixed, so clustering is deterministic.
const SEED: u64 = 0x5EED_C1A5_7E25;

/// Rows of a clustering input in panel layout, the layout the search kernels read.
struct Panels {
    blocks: Vec<Block>,
    norms: Vec<f32>,
    len: usize,
    dim: usize,
}

impl Panels {
    fn new(rows: &[f32], dim: usize) -> Self {
        let len = rows.len() / dim;
        let mut blocks = vec![Block::default(); panels(len) * dim];
        let mut norms = vec![0f32; panels(len) * PANEL];
        blocks
            .par_chunks_mut(dim)
            .zip(norms.par_chunks_mut(PANEL))
            .zip(rows.par_chunks(dim * PANEL))
            .for_each(|((panel, panel_norms), panel_rows)| {
                for (lane, row) in panel_rows.chunks_exact(dim).enumerate() {
                    for (block, &x) in panel.iter_mut().zip(row) {
                        block.0[lane] = x;
                    }
                    panel_norms[lane] = squared_norm(row);
                }
            });
        Panels {
            blocks,
            norms,
            len,
            dim,
        }
    }

    /// The rows from `first` (a multiple of [`PANEL`]) to the end.
    fn view_from(&self, first: usize) -> PanelView<'_> {
        let panel = first / PANEL;
        PanelView {
            blocks: &self.blocks[panel * self.dim..],
            norms: &self.norms[panel * PANEL..],
            len: self.len - first,
            dim: self.dim,
        }
    }
}

/// An undirected graph in compressed sparse rows: the neighbours of node `i` are
/// `neighbours[offsets[i]..offsets[i + 1]]`, each edge stored in both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    pub offsets: Vec<usize>,
    pub neighbours: Vec<u32>,
}

impl Graph {
    /// A graph on `nodes` nodes from a list of pairs `(i, j)`, `i != j`, each once.
    pub fn from_pairs(nodes: usize, pairs: &[(u32, u32)]) -> Graph {
        let mut degree = vec![0usize; nodes + 1];
        for &(i, j) in pairs {
            degree[i as usize + 1] += 1;
            degree[j as usize + 1] += 1;
        }
        for i in 0..nodes {
            degree[i + 1] += degree[i];
        }
        let offsets = degree;
        let mut next = offsets.clone();
        let mut neighbours = vec![0u32; offsets[nodes]];
        for &(i, j) in pairs {
            neighbours[next[i as usize]] = j;
            next[i as usize] += 1;
            neighbours[next[j as usize]] = i;
            next[j as usize] += 1;
        }
        Graph {
            offsets,
            neighbours,
        }
    }

    pub fn nodes(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of undirected edges.
    pub fn edges(&self) -> usize {
        self.neighbours.len() / 2
    }

    fn neighbours_of(&self, node: usize) -> &[u32] {
        &self.neighbours[self.offsets[node]..self.offsets[node + 1]]
    }
}

/// Checks a clustering input: `rows` is row-major with `dim` values a row.
/// Returns the number of rows.
fn check_rows(rows: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::invalid("embeddings must have at least one column"));
    }
    if rows.is_empty() {
        return Err(Error::invalid(
            "no embeddings to cluster (the input is empty)",
        ));
    }
    if !rows.len().is_multiple_of(dim) {
        return Err(Error::invalid(format!(
            "{} values are not a whole number of rows of {dim}",
            rows.len()
        )));
    }
    let n = rows.len() / dim;
    if n > u32::MAX as usize {
        return Err(Error::invalid(format!(
            "at most {} embeddings can be clustered at once, got {n}",
            u32::MAX
        )));
    }
    if let Some((row, what)) = search::first_row_problem(rows, dim) {
        return Err(Error::invalid(format!("embedding {row} {what}")));
    }
    Ok(n)
}

fn check_threshold(threshold: f32) -> Result<()> {
    if threshold.is_finite() && threshold > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "the clustering threshold must be a finite distance above 0, got {threshold}"
        )))
    }
}

/// Every pair of rows at Euclidean distance `<= threshold`, as a graph. Exact: the
/// same distances as [`search::within`] gives for each row.
pub fn pairs_within(isa: Isa, rows: &[f32], dim: usize, threshold: f32) -> Result<Graph> {
    let n = check_rows(rows, dim)?;
    // 512 probes and more keep the kernels compute bound (see search::run).
    let block = (BLOCK_HITS / n).clamp(512, 8192).next_multiple_of(PANEL);
    pairs_in_blocks(isa, rows, dim, threshold, block)
}

/// [`pairs_within`] with probe blocks of `block` rows (a multiple of [`PANEL`]).
fn pairs_in_blocks(
    isa: Isa,
    rows: &[f32],
    dim: usize,
    threshold: f32,
    block: usize,
) -> Result<Graph> {
    let n = check_rows(rows, dim)?;
    check_threshold(threshold)?;
    let panels = Panels::new(rows, dim);
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for first in (0..n).step_by(block) {
        let probes = &rows[first * dim..(first + block).min(n) * dim];
        let hits = search::within(isa, &panels.view_from(first), probes, threshold)?;
        for (offset, probe_hits) in hits.into_iter().enumerate() {
            // Hit rows count from `first`; the pair (i, j) is kept once, from i < j.
            let i = first + offset;
            pairs.extend(
                probe_hits
                    .iter()
                    .filter(|h| h.row > offset)
                    .map(|h| (i as u32, (first + h.row) as u32)),
            );
        }
        if pairs.len() > MAX_EDGES {
            return Err(Error::invalid(format!(
                "more than {MAX_EDGES} pairs of faces are within the clustering threshold \
                 {threshold}: it is far too loose for these embeddings (is it the right \
                 model's threshold?); lower it"
            )));
        }
    }
    Ok(Graph::from_pairs(n, &pairs))
}

/// splitmix64: a tiny deterministic generator for the visiting order.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-shift (bias below 2^-32
    /// for any n a graph can have).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// Chinese whispers over `graph`: one label per node, a node index shared by the
/// nodes of a cluster. Deterministic (fixed seed); the rule is in the module notes.
pub fn chinese_whispers(graph: &Graph) -> Vec<u32> {
    let n = graph.nodes();
    let mut labels: Vec<u32> = (0..n as u32).collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix(SEED);
    // Votes per label for the node being visited; `touched` lists the labels set,
    // so resetting costs the node's degree, not n.
    let mut votes = vec![0u32; n];
    let mut touched: Vec<u32> = Vec::new();
    for _ in 0..MAX_SWEEPS {
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut changed = false;
        for &node in &order {
            let node = node as usize;
            let neighbours = graph.neighbours_of(node);
            if neighbours.is_empty() {
                continue;
            }
            let own = labels[node];
            for &label in
                std::iter::once(&own).chain(neighbours.iter().map(|&j| &labels[j as usize]))
            {
                if votes[label as usize] == 0 {
                    touched.push(label);
                }
                votes[label as usize] += 1;
            }
            let mut best = own;
            for &label in &touched {
                let (v, b) = (votes[label as usize], votes[best as usize]);
                if v > b || (v == b && label < best) {
                    best = label;
                }
            }
            for &label in &touched {
                votes[label as usize] = 0;
            }
            touched.clear();
            if best != own {
                labels[node] = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    labels
}

/// Labels of the connected components of `graph` (the smallest node index of each
/// component): the baseline chinese whispers is measured against.
pub fn connected_components(graph: &Graph) -> Vec<u32> {
    let n = graph.nodes();
    let mut labels = vec![u32::MAX; n];
    let mut stack = Vec::new();
    for start in 0..n {
        if labels[start] != u32::MAX {
            continue;
        }
        labels[start] = start as u32;
        stack.push(start);
        while let Some(node) = stack.pop() {
            for &j in graph.neighbours_of(node) {
                if labels[j as usize] == u32::MAX {
                    labels[j as usize] = start as u32;
                    stack.push(j as usize);
                }
            }
        }
    }
    labels
}

/// Renumbers raw labels into clusters `0, 1, ...` by size, largest first (ties:
/// the cluster whose first row comes first); rows of clusters smaller than
/// `min_size` get `-1`.
pub fn number_clusters(raw: &[u32], min_size: usize) -> Vec<i64> {
    let n = raw.len();
    let mut size = vec![0usize; n];
    let mut first = vec![usize::MAX; n];
    for (row, &label) in raw.iter().enumerate() {
        size[label as usize] += 1;
        first[label as usize] = first[label as usize].min(row);
    }
    let mut kept: Vec<usize> = (0..n)
        .filter(|&l| size[l] > 0 && size[l] >= min_size)
        .collect();
    kept.sort_unstable_by_key(|&l| (std::cmp::Reverse(size[l]), first[l]));
    let mut number = vec![-1i64; n];
    for (k, &l) in kept.iter().enumerate() {
        number[l] = k as i64;
    }
    raw.iter().map(|&label| number[label as usize]).collect()
}

/// What [`cluster`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    /// One cluster number per row: 0 is the largest cluster; -1 for rows of
    /// clusters smaller than `min_size`.
    pub labels: Vec<i64>,
    /// Pairs within the threshold (edges of the graph).
    pub pairs: usize,
}

/// Clusters `rows` (row-major, `dim` values each, one model's embeddings) into
/// people: pairs within `threshold` linked, then chinese whispers. `min_size`
/// (at least 1) marks rows of smaller clusters `-1`.
pub fn cluster(rows: &[f32], dim: usize, threshold: f32, min_size: usize) -> Result<Clusters> {
    if min_size == 0 {
        return Err(Error::invalid("min_size must be at least 1"));
    }
    let graph = pairs_within(Isa::best(), rows, dim, threshold)?;
    let labels = number_clusters(&chinese_whispers(&graph), min_size);
    Ok(Clusters {
        labels,
        pairs: graph.edges(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors around `people` random centres, `per` each, spread `noise`.
    fn blobs(people: usize, per: usize, dim: usize, noise: f32, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix(seed);
        let mut uniform = move || (rng.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        let unit = |v: &mut [f32]| {
            let norm = squared_norm(v).sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
        };
        let mut rows = Vec::with_capacity(people * per * dim);
        for _ in 0..people {
            let mut centre: Vec<f32> = (0..dim).map(|_| uniform()).collect();
            unit(&mut centre);
            for _ in 0..per {
                let mut row: Vec<f32> = centre.iter().map(|&c| c + noise * uniform()).collect();
                unit(&mut row);
                rows.extend(row);
            }
        }
        rows
    }

    fn distance(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn pairs_match_brute_force_on_every_isa() {
        // Probe blocks of 512 rows (as pairs_within cuts 100,000 rows) and of 32.
        for (n_people, per, threshold, block) in [(7, 100, 0.9, 512), (55, 20, 1.0, 32)] {
            let dim = 24;
            let rows = blobs(n_people, per, dim, 0.35, 7);
            let n = rows.len() / dim;
            let mut expected = Vec::new();
            for i in 0..n {
                for j in i + 1..n {
                    let d = distance(&rows[i * dim..][..dim], &rows[j * dim..][..dim]);
                    // Far from the threshold both ways: the expansion's rounding
                    // cannot move a pair across it.
                    if d <= threshold - 1e-3 {
                        expected.push((i, j));
                    }
                }
            }
            for isa in Isa::available() {
                let graph = pairs_in_blocks(isa, &rows, dim, threshold, block).unwrap();
                let mut got = Vec::new();
                for i in 0..n {
                    for &j in graph.neighbours_of(i) {
                        let j = j as usize;
                        assert_ne!(i, j, "no self edges");
                        if i < j {
                            got.push((i, j));
                        }
                    }
                }
                got.sort_unstable();
                let near_threshold = |&(i, j): &(usize, usize)| {
                    let d = distance(&rows[i * dim..][..dim], &rows[j * dim..][..dim]);
                    (d - threshold).abs() <= 1e-3
                };
                got.retain(|p| !near_threshold(p));
                assert_eq!(got, expected, "{} at n = {n}", isa.name());
            }
        }
    }

    #[test]
    fn pairs_across_probe_blocks_are_found_once() {
        // 1,100 identical rows: every pair is an edge, across blocks of 48 rows.
        let dim = 4;
        let rows: Vec<f32> = (0..1100).flat_map(|_| [0.5f32, 0.5, 0.5, 0.5]).collect();
        let graph = pairs_in_blocks(Isa::best(), &rows, dim, 0.01, 48).unwrap();
        assert_eq!(graph.edges(), 1100 * 1099 / 2);
        for i in 0..1100 {
            let mut seen = graph.neighbours_of(i).to_vec();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 1099);
        }
    }

    #[test]
    fn separated_people_are_recovered_exactly() {
        let dim = 32;
        let rows = blobs(12, 15, dim, 0.2, 3);
        let got = cluster(&rows, dim, 0.8, 1).unwrap();
        for (row, &label) in got.labels.iter().enumerate() {
            // Every person has 15 faces, so sizes tie and clusters are numbered by
            // their first row: person p is cluster p.
            assert_eq!(label, (row / 15) as i64, "row {row}");
        }
    }

    #[test]
    fn chinese_whispers_splits_a_bridge_that_components_merge() {
        // Two cliques of 6 joined by one edge: one component, two clusters.
        let mut pairs = Vec::new();
        for base in [0u32, 6] {
            for i in 0..6 {
                for j in i + 1..6 {
                    pairs.push((base + i, base + j));
                }
            }
        }
        pairs.push((5, 6));
        let graph = Graph::from_pairs(12, &pairs);
        let components = number_clusters(&connected_components(&graph), 1);
        assert_eq!(components, vec![0; 12]);
        let whispers = number_clusters(&chinese_whispers(&graph), 1);
        assert_eq!(whispers, [vec![0; 6], vec![1; 6]].concat());
    }

    #[test]
    fn deterministic_and_numbered_by_size() {
        let dim = 16;
        let mut rows = blobs(3, 4, dim, 0.1, 11);
        rows.extend(blobs(1, 9, dim, 0.1, 12));
        rows.extend(blobs(1, 1, dim, 0.1, 13));
        let a = cluster(&rows, dim, 0.7, 1).unwrap();
        let b = cluster(&rows, dim, 0.7, 1).unwrap();
        assert_eq!(a, b);
        // The 9 come last in the input but form the largest cluster: number 0.
        assert!(a.labels[12..21].iter().all(|&l| l == 0));
        assert_eq!(a.labels[21], 4);
        let at_least_five = cluster(&rows, dim, 0.7, 5).unwrap();
        assert!(at_least_five.labels[..12].iter().all(|&l| l == -1));
        assert!(at_least_five.labels[12..21].iter().all(|&l| l == 0));
        assert_eq!(at_least_five.labels[21], -1);
    }

    #[test]
    fn bad_input_is_an_error() {
        let err = |r: Result<Clusters>| match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("expected an invalid-argument error, got {other:?}"),
        };
        assert!(err(cluster(&[], 4, 1.0, 1)).contains("empty"));
        assert!(err(cluster(&[1.0, 0.0, f32::NAN, 0.0], 2, 1.0, 1)).contains("embedding 1"));
        assert!(err(cluster(&[1.0, 0.0, 0.0], 2, 1.0, 1)).contains("whole number"));
        for threshold in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(err(cluster(&[1.0, 0.0], 2, threshold, 1)).contains("threshold"));
        }
        assert!(err(cluster(&[1.0, 0.0], 2, 1.0, 0)).contains("min_size"));
    }
}
