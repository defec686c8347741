//! Statistical disclosure control for published shares such as "adult residents of hamlet X
//! who paid online in March: 37 of 112".
//!
//! A [`Cell`] is a numerator (people who did it) over a denominator (people counted).
//! Denominators are population counts and are always published; suppressing a cell hides its
//! numerator, and so its share. Cells are tied together by additive [`Sum`] constraints (a
//! commune total over its hamlets, the margins of a hamlet × gender table), and a hidden
//! numerator must not be recomputable from the published ones through those sums.
//!
//! The guarantee is about *exact* recovery only: [`recoverable_cells`] finds suppressed
//! numerators that the published numerators and the sums pin to a single value. Interval
//! attacks are not covered: the bounds `0 <= numerator <= denominator` can still narrow a
//! hidden numerator to a range, for instance when two hidden cells must share a remainder
//! equal to one cell's published denominator, and a range of a single value reveals it.

/// The threshold below which a count is too small to publish, unless configured otherwise.
pub const DEFAULT_THRESHOLD: u64 = 5;

/// One published share: `numerator` of `denominator` people.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cell {
    pub numerator: u64,
    pub denominator: u64,
}

/// One additive constraint: `cells[total] = sum of cells[parts]`, for numerators and
/// denominators alike.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Sum {
    pub total: usize,
    pub parts: Vec<usize>,
}

impl Sum {
    /// A list of parts and the cell that totals them, e.g. the commune row over its hamlets.
    pub fn new(total: usize, parts: impl IntoIterator<Item = usize>) -> Sum {
        Sum {
            total,
            parts: parts.into_iter().collect(),
        }
    }

    fn members(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.total).chain(self.parts.iter().copied())
    }
}

/// Whether a cell's numerator is published, and if not, why.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Visibility {
    Shown,
    /// Too few people on one side of the share: it would point at individuals.
    Primary,
    /// Harmless in itself, hidden so that a primary cell cannot be recomputed from the sums.
    Secondary,
}

impl Visibility {
    pub fn is_suppressed(self) -> bool {
        self != Visibility::Shown
    }
}

/// The sums of a two-way table with margins, given the cell index of every position.
///
/// `grid[row][column]` is the cell shown at that position. The last column holds the row
/// totals, the last row the column totals, and the bottom-right corner the grand total. Every
/// row and every column, margins included, becomes one [`Sum`] whose total is its last entry:
/// the grand total is thus constrained both as the sum of the row totals and as the sum of the
/// column totals, as a reader of the published table can use both.
///
/// # Panics
///
/// If the grid is not rectangular or has fewer than two rows or two columns (there would be no
/// margin to speak of).
pub fn margined_table_sums(grid: &[Vec<usize>]) -> Vec<Sum> {
    let width = grid.first().map_or(0, Vec::len);
    assert!(
        grid.len() >= 2 && width >= 2,
        "a margined table has a body and its margins"
    );
    assert!(
        grid.iter().all(|row| row.len() == width),
        "a margined table is rectangular"
    );
    let rows = grid
        .iter()
        .map(|row| Sum::new(row[width - 1], row[..width - 1].iter().copied()));
    let columns = (0..width).map(|column| {
        Sum::new(
            grid[grid.len() - 1][column],
            grid[..grid.len() - 1].iter().map(|row| row[column]),
        )
    });
    rows.chain(columns).collect()
}

/// Which numerators may be published, with threshold `k` (see [`DEFAULT_THRESHOLD`]).
///
/// A cell is primary-suppressed when fewer than `k` people are on either side of its share
/// (`numerator < k` or `denominator - numerator < k`), which includes empty cells (0 of 0) and
/// shares of 100% over few people. Then more cells are suppressed until no suppressed numerator
/// is [recoverable](recoverable_cells):
///
/// 1. while some sum has exactly one suppressed member, its unsuppressed part with the smallest
///    numerator (ties: lowest index) is suppressed too, or its total if every part is hidden;
///    small complements lose the least information;
/// 2. that rule is enough for a single list with its total, but not for two-way tables or
///    nested totals, so the exact check runs next; if it still recovers a cell, the smallest
///    unsuppressed member of a sum containing that cell is suppressed and both steps repeat.
///
/// Every round hides one more cell, so this ends, at worst with every cell in a sum hidden. A
/// numerator the sums force regardless of the data (possible only with degenerate sums, such
/// as a cell listed as a part of its own total) stays recoverable even then.
///
/// Inputs must be consistent (every sum holds, numerators never exceed denominators); debug
/// builds check it.
pub fn suppress(cells: &[Cell], sums: &[Sum], k: u64) -> Vec<Visibility> {
    debug_assert!(
        is_consistent(cells, sums),
        "the cells do not satisfy their sums"
    );
    let mut visibility: Vec<Visibility> = cells
        .iter()
        .map(|cell| {
            let too_few_either_side =
                cell.numerator < k || cell.denominator.saturating_sub(cell.numerator) < k;
            if too_few_either_side {
                Visibility::Primary
            } else {
                Visibility::Shown
            }
        })
        .collect();
    loop {
        while let Some(complement) = sums
            .iter()
            .filter(|sum| {
                sum.members()
                    .filter(|&cell| visibility[cell].is_suppressed())
                    .count()
                    == 1
            })
            .find_map(|sum| smallest_shown_member(cells, sum, &visibility))
        {
            visibility[complement] = Visibility::Secondary;
        }
        let Some(&exposed) = recoverable_cells(cells, sums, &visibility).first() else {
            return visibility;
        };
        let around_exposed = sums
            .iter()
            .filter(|sum| sum.members().any(|cell| cell == exposed))
            .filter_map(|sum| smallest_shown_member(cells, sum, &visibility))
            .min_by_key(|&cell| (cells[cell].numerator, cell));
        // The exposed cell's own sums are all hidden, yet the sums elsewhere still pin it down
        // (nested totals): hiding anything else that takes part in a sum is the way left.
        let anywhere = || {
            sums.iter()
                .flat_map(Sum::members)
                .filter(|&cell| !visibility[cell].is_suppressed())
                .min_by_key(|&cell| (cells[cell].numerator, cell))
        };
        match around_exposed.or_else(anywhere) {
            Some(cell) => visibility[cell] = Visibility::Secondary,
            None => return visibility,
        }
    }
}

/// The unsuppressed part with the smallest numerator (ties: lowest index), or the total when
/// every part is hidden: totals are the figures readers want most, so they go last.
fn smallest_shown_member(cells: &[Cell], sum: &Sum, visibility: &[Visibility]) -> Option<usize> {
    let shown = |cell: &usize| !visibility[*cell].is_suppressed();
    sum.parts
        .iter()
        .copied()
        .filter(shown)
        .min_by_key(|&cell| (cells[cell].numerator, cell))
        .or_else(|| Some(sum.total).filter(shown))
}

fn is_consistent(cells: &[Cell], sums: &[Sum]) -> bool {
    let total_of = |parts: &[usize], field: fn(&Cell) -> u64| -> u128 {
        parts
            .iter()
            .map(|&part| u128::from(field(&cells[part])))
            .sum()
    };
    cells.iter().all(|cell| cell.numerator <= cell.denominator)
        && sums.iter().all(|sum| {
            let total = cells[sum.total];
            total_of(&sum.parts, |cell| cell.numerator) == u128::from(total.numerator)
                && total_of(&sum.parts, |cell| cell.denominator) == u128::from(total.denominator)
        })
}

/// The suppressed cells whose numerators the published numerators determine exactly through
/// the sums, in increasing index order. Empty means the suppression holds against exact
/// recomputation; interval attacks are out of scope (see the module documentation).
///
/// Each sum is a linear equation in the hidden numerators, the published ones being constants.
/// A hidden numerator is determined iff its unit vector lies in the row space of those
/// equations, decided here by Gauss–Jordan elimination over the integers (rows rescaled to
/// their gcd, so exact). The cells' values play no part: this depends on which cells are
/// hidden and on the sums alone.
///
/// # Panics
///
/// If an intermediate coefficient overflows `i128`. Lists, nested totals and two-way tables
/// with margins keep the reduced coefficients within ±1; only an adversarial web of dozens of
/// overlapping sums could come near the limit.
pub fn recoverable_cells(cells: &[Cell], sums: &[Sum], visibility: &[Visibility]) -> Vec<usize> {
    assert_eq!(cells.len(), visibility.len(), "one visibility per cell");
    let hidden: Vec<usize> = (0..cells.len())
        .filter(|&cell| visibility[cell].is_suppressed())
        .collect();
    let mut unknown_of_cell = vec![None; cells.len()];
    for (unknown, &cell) in hidden.iter().enumerate() {
        unknown_of_cell[cell] = Some(unknown);
    }
    let equations: Vec<Vec<i128>> = sums
        .iter()
        .map(|sum| {
            let mut coefficients = vec![0i128; hidden.len()];
            let signed =
                std::iter::once((sum.total, 1)).chain(sum.parts.iter().map(|&part| (part, -1)));
            for (cell, sign) in signed {
                if let Some(unknown) = unknown_of_cell[cell] {
                    coefficients[unknown] += sign;
                }
            }
            coefficients
        })
        .filter(|coefficients| coefficients.iter().any(|&c| c != 0))
        .collect();
    determined_unknowns(equations, hidden.len())
        .into_iter()
        .zip(hidden)
        .filter_map(|(determined, cell)| determined.then_some(cell))
        .collect()
}

/// For each unknown, whether the equations fix it. In reduced row echelon form an unknown is
/// fixed iff it is a pivot whose row has no other non-zero entry: any free unknown it depended
/// on could otherwise move it.
fn determined_unknowns(mut rows: Vec<Vec<i128>>, unknowns: usize) -> Vec<bool> {
    let mut pivot_row = vec![None; unknowns];
    let mut reduced = 0;
    for column in 0..unknowns {
        let Some(found) = (reduced..rows.len()).find(|&row| rows[row][column] != 0) else {
            continue;
        };
        rows.swap(reduced, found);
        let pivot = rows[reduced].clone();
        for (index, row) in rows.iter_mut().enumerate() {
            if index != reduced && row[column] != 0 {
                eliminate(row, &pivot, column);
            }
        }
        pivot_row[column] = Some(reduced);
        reduced += 1;
    }
    pivot_row
        .into_iter()
        .map(|row| row.is_some_and(|row| rows[row].iter().filter(|&&c| c != 0).count() == 1))
        .collect()
}

/// `row := pivot[column] * row - row[column] * pivot`, divided by the gcd of its entries so
/// that coefficients stay as small as the row space allows.
fn eliminate(row: &mut [i128], pivot: &[i128], column: usize) {
    const OVERFLOW: &str = "elimination coefficient overflowed i128";
    let (scale, factor) = (pivot[column], row[column]);
    for (entry, &pivot_entry) in row.iter_mut().zip(pivot) {
        let scaled = entry.checked_mul(scale).expect(OVERFLOW);
        let removed = pivot_entry.checked_mul(factor).expect(OVERFLOW);
        *entry = scaled.checked_sub(removed).expect(OVERFLOW);
    }
    let divisor = row.iter().fold(0, |gcd, &entry| {
        greatest_common_divisor(gcd, entry.unsigned_abs())
    });
    if divisor > 1 {
        let divisor = i128::try_from(divisor)
            .expect("a gcd of i128 entries fits in i128 unless all are i128::MIN");
        row.iter_mut().for_each(|entry| *entry /= divisor);
    }
}

fn greatest_common_divisor(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = DEFAULT_THRESHOLD;

    fn cell(numerator: u64, denominator: u64) -> Cell {
        Cell {
            numerator,
            denominator,
        }
    }

    pub(super) fn total(cells: &[Cell]) -> Cell {
        cell(
            cells.iter().map(|c| c.numerator).sum(),
            cells.iter().map(|c| c.denominator).sum(),
        )
    }

    /// Parts followed by their total, the total being the last cell.
    pub(super) fn list_with_total(parts: &[Cell]) -> (Vec<Cell>, Sum) {
        let cells = parts.iter().copied().chain([total(parts)]).collect();
        (cells, Sum::new(parts.len(), 0..parts.len()))
    }

    /// A body of cells with margins appended, laid out row-major over the whole margined grid,
    /// whose index matrix is returned with the cells.
    pub(super) fn margined_table(body: &[Vec<Cell>]) -> (Vec<Cell>, Vec<Vec<usize>>) {
        let mut grid_cells: Vec<Vec<Cell>> = body
            .iter()
            .map(|row| row.iter().copied().chain([total(row)]).collect())
            .collect();
        let width = grid_cells[0].len();
        let totals_row = (0..width)
            .map(|column| total(&grid_cells.iter().map(|row| row[column]).collect::<Vec<_>>()))
            .collect();
        grid_cells.push(totals_row);
        let grid = (0..grid_cells.len())
            .map(|row| (0..width).map(|column| row * width + column).collect())
            .collect();
        (grid_cells.concat(), grid)
    }

    fn count(visibility: &[Visibility], wanted: Visibility) -> usize {
        visibility.iter().filter(|&&v| v == wanted).count()
    }

    #[test]
    fn one_small_hamlet_takes_the_smallest_other_hamlet_with_it() {
        let hamlets: Vec<Cell> = (0..19)
            .map(|hamlet| {
                if hamlet == 7 {
                    cell(3, 90)
                } else {
                    cell(20 + hamlet, 100)
                }
            })
            .collect();
        let (cells, sum) = list_with_total(&hamlets);
        let sums = [sum];
        let visibility = suppress(&cells, &sums, K);
        assert_eq!(visibility[7], Visibility::Primary);
        assert_eq!(
            visibility[0],
            Visibility::Secondary,
            "hamlet 0 has the smallest numerator"
        );
        assert_eq!(
            count(&visibility, Visibility::Shown),
            18,
            "the other hamlets and the total"
        );
        assert_eq!(visibility[19], Visibility::Shown);
        assert!(recoverable_cells(&cells, &sums, &visibility).is_empty());
    }

    #[test]
    fn one_suppressed_cell_in_a_list_is_recoverable_and_two_are_not() {
        let (cells, sum) = list_with_total(&[cell(10, 20), cell(11, 20), cell(12, 20)]);
        let sums = [sum];
        let mut visibility = vec![Visibility::Shown; 4];
        visibility[1] = Visibility::Primary;
        assert_eq!(recoverable_cells(&cells, &sums, &visibility), [1]);
        visibility[3] = Visibility::Secondary;
        assert!(recoverable_cells(&cells, &sums, &visibility).is_empty());
    }

    #[test]
    fn hamlet_by_gender_table_hides_a_rectangle_around_a_small_cell() {
        let body: Vec<Vec<Cell>> = (0..19)
            .map(|hamlet| {
                let women = if hamlet == 4 {
                    cell(2, 50)
                } else {
                    cell(30 + hamlet, 60)
                };
                vec![women, cell(25 + hamlet, 55)]
            })
            .collect();
        let (cells, grid) = margined_table(&body);
        let sums = margined_table_sums(&grid);
        let visibility = suppress(&cells, &sums, K);
        let small = grid[4][0];
        assert_eq!(visibility[small], Visibility::Primary);
        assert_eq!(count(&visibility, Visibility::Primary), 1);
        assert!(
            visibility[grid[4][1]].is_suppressed(),
            "the small cell's row needs a complement"
        );
        assert!(recoverable_cells(&cells, &sums, &visibility).is_empty());
        assert_eq!(
            count(&visibility, Visibility::Secondary),
            3,
            "a rectangle of four hidden cells suffices"
        );
    }

    #[test]
    fn hiding_two_per_row_and_column_can_still_leave_a_bridge_recoverable() {
        // Two hidden 2×2 rectangles joined by one hidden cell: every row and column has zero or
        // at least two hidden cells, but the joining cell is recomputable, as nothing can
        // compensate a change to it.
        let joined = [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (2, 2),
            (2, 3),
            (3, 2),
            (3, 3),
            (0, 2),
        ];
        let body: Vec<Vec<Cell>> = (0..4)
            .map(|row| {
                (0..4)
                    .map(|column| {
                        if joined.contains(&(row, column)) {
                            cell(1, 100)
                        } else {
                            cell(20, 100)
                        }
                    })
                    .collect()
            })
            .collect();
        let (cells, grid) = margined_table(&body);
        let sums = margined_table_sums(&grid);
        let primary: Vec<Visibility> = cells
            .iter()
            .map(|c| {
                if c.numerator < K {
                    Visibility::Primary
                } else {
                    Visibility::Shown
                }
            })
            .collect();
        assert_eq!(recoverable_cells(&cells, &sums, &primary), [grid[0][2]]);

        let visibility = suppress(&cells, &sums, K);
        assert_eq!(count(&visibility, Visibility::Primary), joined.len());
        assert!(count(&visibility, Visibility::Secondary) > 0);
        assert!(recoverable_cells(&cells, &sums, &visibility).is_empty());
    }

    #[test]
    fn nested_totals_need_the_exact_check() {
        // Commune = A + B + C and group = A + B, both published. Hiding A, B and C leaves every
        // sum with two or more hidden members, yet C = commune − group.
        let cells = [
            cell(9, 120),
            cell(3, 40),
            cell(2, 40),
            cell(4, 40),
            cell(5, 80),
        ];
        let sums = [Sum::new(0, [1, 2, 3]), Sum::new(4, [1, 2])];
        let primary = [
            Visibility::Shown,
            Visibility::Primary,
            Visibility::Primary,
            Visibility::Primary,
            Visibility::Shown,
        ];
        assert_eq!(recoverable_cells(&cells, &sums, &primary), [3]);

        let visibility = suppress(&cells, &sums, K);
        assert_eq!(visibility[1..4], primary[1..4]);
        assert_eq!(
            visibility[0],
            Visibility::Secondary,
            "the commune total is the only shown member left around C"
        );
        assert_eq!(visibility[4], Visibility::Shown);
        assert!(recoverable_cells(&cells, &sums, &visibility).is_empty());
    }

    #[test]
    fn nothing_small_means_nothing_hidden() {
        let (cells, sum) = list_with_total(&[cell(10, 20), cell(15, 40), cell(7, 12)]);
        assert!(suppress(&cells, &[sum], K)
            .iter()
            .all(|&v| v == Visibility::Shown));
    }

    #[test]
    fn an_all_small_table_is_all_primary() {
        let (cells, sum) = list_with_total(&[cell(0, 0), cell(1, 2), cell(2, 2)]);
        let visibility = suppress(&cells, &[sum], K);
        assert!(visibility.iter().all(|&v| v == Visibility::Primary));
    }

    #[test]
    fn few_people_left_over_is_as_telling_as_few_people() {
        let visibility = suppress(
            &[cell(48, 50), cell(0, 0), cell(5, 10), cell(4, 100)],
            &[],
            K,
        );
        use Visibility::*;
        assert_eq!(visibility, [Primary, Primary, Shown, Primary]);
    }
}

#[cfg(test)]
mod properties {
    use super::tests::{list_with_total, margined_table, total};
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    prop_compose! {
        // Counts near the threshold, so that tables mix small and publishable cells.
        fn any_cell()(numerator in 0u64..30, others in 0u64..30) -> Cell {
            Cell { numerator, denominator: numerator + others }
        }
    }

    fn check_suppression(cells: &[Cell], sums: &[Sum], k: u64) -> Result<(), TestCaseError> {
        let visibility = suppress(cells, sums, k);
        for (cell, visibility) in cells.iter().zip(&visibility) {
            let small = cell.numerator < k || cell.denominator - cell.numerator < k;
            prop_assert_eq!(small, *visibility == Visibility::Primary, "{:?}", cell);
            if *visibility == Visibility::Shown {
                prop_assert!(cell.numerator >= k && cell.denominator - cell.numerator >= k);
            }
        }
        prop_assert_eq!(
            recoverable_cells(cells, sums, &visibility),
            Vec::<usize>::new()
        );
        Ok(())
    }

    proptest! {
        /// A list with its total, and optionally a subtotal over its first parts (a group of
        /// hamlets published on its own): primary cells stay hidden, shown cells are never
        /// small, and no hidden numerator can be recomputed.
        #[test]
        fn lists_with_totals_leave_nothing_recoverable(
            parts in vec(any_cell(), 1..25),
            subtotal_parts in 0usize..25,
            k in 1u64..8,
        ) {
            let (mut cells, whole) = list_with_total(&parts);
            let mut sums = vec![whole];
            if (2..parts.len()).contains(&subtotal_parts) {
                cells.push(total(&parts[..subtotal_parts]));
                sums.push(Sum::new(cells.len() - 1, 0..subtotal_parts));
            }
            check_suppression(&cells, &sums, k)?;
        }

        /// Two-way tables with row, column and grand totals: the same guarantees.
        #[test]
        fn margined_tables_leave_nothing_recoverable(
            body in (1usize..9, 1usize..7)
                .prop_flat_map(|(rows, columns)| vec(vec(any_cell(), columns), rows)),
            k in 1u64..8,
        ) {
            let (cells, grid) = margined_table(&body);
            check_suppression(&cells, &margined_table_sums(&grid), k)?;
        }
    }
}
