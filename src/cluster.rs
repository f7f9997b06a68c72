//! Clustering faces by person: every pair of embeddings within a distance
//! threshold becomes an edge of a sparse graph, and average linkage over that
//! graph merges the linked faces into people.
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
//! # Average linkage
//!
//! Every face starts as a cluster of its own; the two linked clusters whose faces
//! are closest on average (the mean squared distance over all their pairs) merge,
//! again and again, while that mean is within the threshold squared. A mean over
//! all pairs is what one stray link between two people cannot move: a chain of
//! close pairs joins them into one connected component, and chinese whispers'
//! label propagation both lets such chains through and splits a person whose
//! photos vary; on LFW View 1 (see `benches/bench_cluster.py`) average linkage
//! beat both, with its threshold calibrated on DevTrain and measured on DevTest.
//! The mean squared distance of two clusters follows from the sums of their rows
//! and of their squared norms, so each candidate costs one dot product, and a
//! pair of clusters within the threshold always has a pair of faces within it:
//! the sparse graph holds every merge all-pairs average linkage would make. The
//! heap orders candidates by distance and then by cluster ids, so the result is
//! deterministic and independent of the input's order of ties.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::search::{self, panels, squared_norm, Block, Isa, PanelView, PANEL};

/// Largest number of pairs within the threshold the graph may hold (8 bytes
/// each stored in both directions, and 16 as a merge candidate: 2.4 GB at the
/// limit).
pub const MAX_EDGES: usize = 100_000_000;

/// Most rows one clustering takes: rows and merged clusters share u32 ids.
const MAX_ROWS: usize = (u32::MAX / 2) as usize;

/// Hits one probe block may return at most (rows x block size); 2^24 hits are
/// 128 MiB of search results.
const BLOCK_HITS: usize = 1 << 24;

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
    // Rows and the clusters merged from them (fewer than n) are u32 ids.
    if n > MAX_ROWS {
        return Err(Error::invalid(format!(
            "at most {MAX_ROWS} embeddings can be clustered at once, got {n}"
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

/// Two clusters that may merge: their mean squared distance and their ids
/// (`a < b`). Ordered by distance, then ids, so the merge order never depends on
/// how the heap breaks ties.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    mean_squared: f64,
    a: u32,
    b: u32,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.mean_squared
            .total_cmp(&other.mean_squared)
            .then(self.a.cmp(&other.a))
            .then(self.b.cmp(&other.b))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The clusters of an average-linkage run. A cluster is an id: rows are
/// `0..n`, the cluster made by the k-th merge is `n + k`, and an id never
/// changes its members, so a heap entry whose two ids are both alive is current.
/// What the linkage needs is kept per cluster, in the slot of its smallest row:
/// the sum of its rows, the sum of their squared norms, its size.
struct Agglomeration<'a> {
    graph: &'a Graph,
    dim: usize,
    /// The cluster an id was merged into; `parent[id] == id` while it is alive.
    parent: Vec<u32>,
    slot: Vec<u32>,
    sums: Vec<f32>,
    squares: Vec<f64>,
    sizes: Vec<u32>,
    /// Neighbouring clusters of merged clusters (id `n + k` at `k`); a row's are
    /// the graph's. Ids in them may have merged since: resolve with `root`.
    merged_neighbours: Vec<Vec<u32>>,
}

impl<'a> Agglomeration<'a> {
    fn new(graph: &'a Graph, rows: &[f32], dim: usize) -> Self {
        let n = graph.nodes();
        Agglomeration {
            graph,
            dim,
            parent: (0..n as u32).collect(),
            slot: (0..n as u32).collect(),
            sums: rows.to_vec(),
            squares: rows
                .par_chunks(dim)
                .map(|row| row.iter().map(|&x| f64::from(x) * f64::from(x)).sum())
                .collect(),
            sizes: vec![1; n],
            merged_neighbours: Vec::new(),
        }
    }

    fn alive(&self, id: u32) -> bool {
        self.parent[id as usize] == id
    }

    /// The alive cluster holding `id`, shortening the path on the way.
    fn root(&mut self, id: u32) -> u32 {
        let mut top = id;
        while self.parent[top as usize] != top {
            top = self.parent[top as usize];
        }
        let mut at = id;
        while at != top {
            at = std::mem::replace(&mut self.parent[at as usize], top);
        }
        top
    }

    fn neighbours(&self, id: u32) -> &[u32] {
        let n = self.graph.nodes();
        match (id as usize).checked_sub(n) {
            None => self.graph.neighbours_of(id as usize),
            Some(k) => &self.merged_neighbours[k],
        }
    }

    /// Mean squared distance between the rows of clusters `a` and `b`:
    /// `Qa/na + Qb/nb - 2 Sa.Sb/(na nb)` from their sums `S` and sums of
    /// squared norms `Q`, exact for any rows, unit or not.
    fn mean_squared(&self, a: u32, b: u32) -> f64 {
        let (sa, sb) = (
            self.slot[a as usize] as usize,
            self.slot[b as usize] as usize,
        );
        let dot: f64 = self.sums[sa * self.dim..][..self.dim]
            .iter()
            .zip(&self.sums[sb * self.dim..][..self.dim])
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let (na, nb) = (f64::from(self.sizes[sa]), f64::from(self.sizes[sb]));
        (self.squares[sa] / na + self.squares[sb] / nb - 2.0 * dot / (na * nb)).max(0.0)
    }

    /// Merges alive clusters `a` and `b` into a new cluster; returns its id.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        let merged = self.parent.len() as u32;
        let mut neighbours: Vec<u32> = [a, b]
            .iter()
            .flat_map(|&id| self.neighbours(id).to_vec())
            .collect();
        self.parent[a as usize] = merged;
        self.parent[b as usize] = merged;
        self.parent.push(merged);
        for id in &mut neighbours {
            *id = self.root(*id);
        }
        neighbours.sort_unstable();
        neighbours.dedup();
        neighbours.retain(|&id| id != merged);
        for id in [a, b] {
            if let Some(k) = (id as usize).checked_sub(self.graph.nodes()) {
                self.merged_neighbours[k] = Vec::new();
            }
        }
        self.merged_neighbours.push(neighbours);
        let (sa, sb) = (self.slot[a as usize], self.slot[b as usize]);
        let (keep, gone) = (sa.min(sb) as usize, sa.max(sb) as usize);
        let (head, tail) = self.sums.split_at_mut(gone * self.dim);
        for (x, &y) in head[keep * self.dim..][..self.dim]
            .iter_mut()
            .zip(&tail[..self.dim])
        {
            *x += y;
        }
        self.squares[keep] += self.squares[gone];
        self.sizes[keep] += self.sizes[gone];
        self.slot.push(keep as u32);
        merged
    }
}

/// Average linkage over `graph` on the rows it was built from: start with every
/// row alone, repeatedly merge the two linked clusters whose rows are closest on
/// average (mean squared distance over all their pairs), while that mean is at
/// most `threshold` squared. One label per row, the smallest row of its cluster.
///
/// Two clusters whose mean squared distance is within `threshold` squared have
/// at least one pair within `threshold`, an edge of the graph built at that
/// threshold: so following only linked clusters misses no merge, and the result
/// is the same as average linkage over all pairs, stopped at the threshold.
pub fn average_linkage(graph: &Graph, rows: &[f32], dim: usize, threshold: f32) -> Vec<u32> {
    let limit = f64::from(threshold) * f64::from(threshold);
    let mut clusters = Agglomeration::new(graph, rows, dim);
    let first: Vec<Reverse<Candidate>> = (0..graph.nodes())
        .into_par_iter()
        .flat_map_iter(|i| {
            let clusters = &clusters;
            graph
                .neighbours_of(i)
                .iter()
                .filter(move |&&j| j as usize > i)
                .map(move |&j| Candidate {
                    mean_squared: clusters.mean_squared(i as u32, j),
                    a: i as u32,
                    b: j,
                })
                .filter(|c| c.mean_squared <= limit)
                .map(Reverse)
        })
        .collect();
    let mut heap = BinaryHeap::from(first);
    while let Some(Reverse(Candidate { a, b, .. })) = heap.pop() {
        if !clusters.alive(a) || !clusters.alive(b) {
            continue;
        }
        let merged = clusters.merge(a, b);
        for &other in clusters.neighbours(merged) {
            let mean_squared = clusters.mean_squared(other, merged);
            if mean_squared <= limit {
                heap.push(Reverse(Candidate {
                    mean_squared,
                    a: other,
                    b: merged,
                }));
            }
        }
    }
    (0..graph.nodes() as u32)
        .map(|row| {
            let root = clusters.root(row);
            clusters.slot[root as usize]
        })
        .collect()
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
/// people: pairs within `threshold` linked, then average linkage while the mean
/// squared distance is within `threshold` squared. `min_size` (at least 1) marks
/// rows of smaller clusters `-1`.
pub fn cluster(rows: &[f32], dim: usize, threshold: f32, min_size: usize) -> Result<Clusters> {
    if min_size == 0 {
        return Err(Error::invalid("min_size must be at least 1"));
    }
    let graph = pairs_within(Isa::best(), rows, dim, threshold)?;
    let labels = number_clusters(&average_linkage(&graph, rows, dim, threshold), min_size);
    Ok(Clusters {
        labels,
        pairs: graph.edges(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::tests::Rng;

    /// Unit vectors around `people` random centres, `per` each, spread `noise`.
    fn blobs(people: usize, per: usize, dim: usize, noise: f32, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut uniform = move || rng.f32();
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
        // At 1.0 some pairs of different people are linked (their components
        // merge 12 people into 8), but no two people are close on average.
        let got = cluster(&rows, dim, 1.0, 1).unwrap();
        for (row, &label) in got.labels.iter().enumerate() {
            // Every person has 15 faces, so sizes tie and clusters are numbered by
            // their first row: person p is cluster p.
            assert_eq!(label, (row / 15) as i64, "row {row}");
        }
    }

    /// Labels of the connected components of `graph` (the smallest node index of
    /// each component): what a single stray link merges.
    fn connected_components(graph: &Graph) -> Vec<u32> {
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

    /// Average linkage the slow, obvious way: every mean of squared distances
    /// over all pairs of members, recomputed after each merge.
    fn average_linkage_by_brute_force(rows: &[f32], dim: usize, threshold: f32) -> Vec<i64> {
        let n = rows.len() / dim;
        let squared = |i: usize, j: usize| -> f64 {
            let (a, b) = (&rows[i * dim..][..dim], &rows[j * dim..][..dim]);
            a.iter()
                .zip(b)
                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                .sum()
        };
        let mut clusters: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        loop {
            let mut best: Option<(f64, usize, usize)> = None;
            for a in 0..clusters.len() {
                for b in a + 1..clusters.len() {
                    let total: f64 = clusters[a]
                        .iter()
                        .flat_map(|&i| clusters[b].iter().map(move |&j| (i, j)))
                        .map(|(i, j)| squared(i, j))
                        .sum();
                    let mean = total / (clusters[a].len() * clusters[b].len()) as f64;
                    if best.is_none_or(|(m, _, _)| mean < m) {
                        best = Some((mean, a, b));
                    }
                }
            }
            match best {
                Some((mean, a, b)) if mean <= f64::from(threshold).powi(2) => {
                    let members = clusters.swap_remove(b);
                    clusters[a].extend(members);
                }
                _ => break,
            }
        }
        let mut raw = vec![0u32; n];
        for members in &clusters {
            let smallest = *members.iter().min().unwrap() as u32;
            members.iter().for_each(|&i| raw[i] = smallest);
        }
        number_clusters(&raw, 1)
    }

    #[test]
    fn average_linkage_matches_all_pairs_by_brute_force() {
        // Overlapping people, so that merges are contested; the second input has
        // rows of lengths 0.5 to 2, which the sums-of-squares formula must handle.
        let dim = 16;
        let unit = blobs(8, 9, dim, 0.6, 5);
        let mut rng = Rng::new(9);
        let scaled: Vec<f32> = unit
            .chunks_exact(dim)
            .flat_map(|row| {
                let scale = 1.25 + 0.75 * rng.f32();
                row.iter().map(move |&x| x * scale)
            })
            .collect();
        for (rows, threshold) in [(&unit, 1.0), (&unit, 1.2), (&scaled, 1.5)] {
            let expected = average_linkage_by_brute_force(rows, dim, threshold);
            let clusters = expected.iter().max().unwrap() + 1;
            assert!(
                (4..60).contains(&clusters),
                "{clusters} clusters: a trivial case"
            );
            let got = cluster(rows, dim, threshold, 1).unwrap();
            assert_eq!(got.labels, expected, "at {threshold}");
        }
    }

    #[test]
    fn a_bridge_that_components_merge_stays_split() {
        // Two tight groups 1.6 apart and one face between them, 0.8 from each:
        // a chain of links within 1.0, but two people on average.
        let mut rng = Rng::new(3);
        let mut rows = Vec::new();
        for centre in [0.0f32, 1.6] {
            for _ in 0..6 {
                rows.extend([centre + 0.05 * rng.f32(), 0.05 * rng.f32(), 1.0]);
            }
        }
        rows.extend([0.8, 0.0, 1.0]);
        let graph = pairs_within(Isa::best(), &rows, 3, 1.0).unwrap();
        assert_eq!(
            number_clusters(&connected_components(&graph), 1),
            vec![0; 13]
        );
        let got = cluster(&rows, 3, 1.0, 1).unwrap().labels;
        let (first, second) = (got[0], got[6]);
        assert_ne!(first, second, "{got:?}");
        assert!(got[..6].iter().all(|&l| l == first), "{got:?}");
        assert!(got[6..12].iter().all(|&l| l == second), "{got:?}");
        assert!(
            [first, second].contains(&got[12]),
            "the bridge joins one: {got:?}"
        );
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
