//! XLSX with `rust_xlsxwriter` in constant-memory mode: rows go to temporary files as they are
//! written; a sheet that fills up continues on the next one.

use std::path::Path;

use chrono::NaiveDate;
use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook, XlsxError};

use super::{Cell, Layout};
use crate::domain::Column;
use crate::store::export::{Names, Row};

/// Rows a sheet holds below its header (Excel's limit is 1,048,576 rows in all).
pub const SHEET_ROWS: u32 = 1_048_575;

pub struct XlsxWriter {
    book: Workbook,
    sheet: usize,
    /// Rows written to the current sheet, header excluded.
    row: u32,
    sheet_rows: u32,
    f: Formats,
}

struct Formats {
    header: Format,
    time: Format,
    duration: Format,
    money: Format,
    ok: Format,
    bad: Format,
    wrap: Format,
}

impl XlsxWriter {
    /// A workbook whose temporary files live in `tempdir`, with the first sheet's header.
    pub fn new(layout: &Layout, tempdir: &Path, sheet_rows: u32) -> Result<Self, XlsxError> {
        let mut book = Workbook::new();
        book.set_tempdir(tempdir)?;
        // Deflate at level 3 instead of 6: compressing the sheet XML is most of an export's time.
        // Measured at 1M rows × 18 columns: level 6 11.8 s / 84 MB, level 3 8.4 s / 100 MB,
        // level 1 7.0 s / 145 MB.
        book.set_zip_compression_level(3);
        let f = Formats {
            header: Format::new().set_bold().set_border_bottom(FormatBorder::Thin),
            time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            duration: Format::new().set_num_format("[h]:mm:ss"),
            money: Format::new().set_num_format("#,##0.00##"),
            ok: Format::new()
                .set_font_color(Color::RGB(0x137A3A))
                .set_background_color(Color::RGB(0xE5F5EB)),
            bad: Format::new()
                .set_font_color(Color::RGB(0xB42318))
                .set_background_color(Color::RGB(0xFDECEA)),
            wrap: Format::new().set_text_wrap(),
        };
        let mut w = XlsxWriter {
            book,
            sheet: 0,
            row: 0,
            sheet_rows: sheet_rows.clamp(1, SHEET_ROWS),
            f,
        };
        w.add_sheet(layout)?;
        Ok(w)
    }

    fn add_sheet(&mut self, layout: &Layout) -> Result<(), XlsxError> {
        let name = sheet_name(layout, self.book.worksheets_mut().len());
        let sheet = self.book.add_worksheet_with_constant_memory()?;
        sheet.set_name(name)?;
        for (i, column) in layout.columns.iter().enumerate() {
            let i = i as u16;
            sheet.set_column_width(i, width(*column))?;
            sheet.write_string_with_format(0, i, layout.header(*column, false), &self.f.header)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        self.sheet = self.book.worksheets_mut().len() - 1;
        self.row = 0;
        Ok(())
    }

    pub fn rows(&mut self, layout: &Layout, names: &Names, calls: &[Row]) -> Result<(), XlsxError> {
        for call in calls {
            if self.row == self.sheet_rows {
                self.add_sheet(layout)?;
            }
            self.row += 1;
            let (row, f) = (self.row, &self.f);
            let sheet = self.book.worksheet_from_index(self.sheet)?;
            for (i, cell) in layout.row(call, names).enumerate() {
                let col = i as u16;
                match cell {
                    Cell::Empty => {}
                    Cell::Text(s) if s.contains('\n') => {
                        sheet.write_string_with_format(row, col, s, &f.wrap)?;
                    }
                    Cell::Text(s) => {
                        sheet.write_string(row, col, s)?;
                    }
                    Cell::Time(t) => {
                        sheet.write_number_with_format(row, col, excel_serial(t), &f.time)?;
                    }
                    Cell::Seconds(n) => {
                        sheet.write_number_with_format(row, col, f64::from(n) / 86_400.0, &f.duration)?;
                    }
                    Cell::Count(n) => {
                        sheet.write_number(row, col, f64::from(n))?;
                    }
                    Cell::Money(e4) => {
                        sheet.write_number_with_format(row, col, e4 as f64 / 10_000.0, &f.money)?;
                    }
                    Cell::Recording(base, id) => {
                        sheet.write_string(row, col, format!("{base}/api/v1/calls/{id}/recording"))?;
                    }
                    Cell::Result { label, success } => {
                        sheet.write_string_with_format(row, col, label, if success { &f.ok } else { &f.bad })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The small last sheet that says what the export holds.
    pub fn about(&mut self, lang: crate::domain::Lang, lines: &[(String, String)]) -> Result<(), XlsxError> {
        let name = match lang {
            crate::domain::Lang::Ru => "О выгрузке",
            crate::domain::Lang::En => "About",
        };
        let sheet = self.book.add_worksheet_with_constant_memory()?;
        sheet.set_name(name)?;
        sheet.set_column_width(0, 18)?;
        sheet.set_column_width(1, 80)?;
        for (i, (key, value)) in lines.iter().enumerate() {
            sheet.write_string_with_format(i as u32, 0, key, &self.f.header)?;
            sheet.write_string(i as u32, 1, value)?;
        }
        Ok(())
    }

    /// Writes the finished workbook to `path`.
    pub fn save(mut self, path: &Path) -> Result<(), XlsxError> {
        self.book.save(path)
    }
}

fn sheet_name(layout: &Layout, index: usize) -> String {
    let base = match layout.lang {
        crate::domain::Lang::Ru => "Звонки",
        crate::domain::Lang::En => "Calls",
    };
    if index == 0 {
        base.to_string()
    } else {
        format!("{base} {}", index + 1)
    }
}

fn width(column: Column) -> f64 {
    match column {
        Column::Time => 20.0,
        Column::Type | Column::Attempts => 11.0,
        Column::RingDuration | Column::TalkDuration | Column::Price => 13.0,
        Column::Result | Column::CompletionCode | Column::Operator | Column::Scenario | Column::Campaign => 22.0,
        Column::Recording => 30.0,
        Column::Notes => 48.0,
        _ => 16.0,
    }
}

/// Days since Excel's epoch (1899-12-30), with the time of day as the fraction.
fn excel_serial(t: chrono::NaiveDateTime) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).and_then(|d| d.and_hms_opt(0, 0, 0));
    epoch.map_or(0.0, |e| (t - e).num_milliseconds() as f64 / 86_400_000.0)
}
