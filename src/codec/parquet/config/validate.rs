//! Checking a conversion configuration and its column list against what the encoder can
//! write, with Firehose-style paths.

use super::*;

/// Path prefix of issues about the column list, which lives outside the conversion block.
pub const SCHEMA_PATH: &str = "hydrant.schema";

/// Checks a conversion configuration and its column list. Each issue is `(path, message)`:
/// paths are relative to `DataFormatConversionConfiguration`
/// (`OutputFormatConfiguration.Serializer.ParquetSerDe.PageSizeBytes`), except that issues
/// about the column list start with [`SCHEMA_PATH`] (`hydrant.schema.columns[2].type`), which
/// is relative to the stream. A schema file is read (relative to the current directory); use
/// [`validate_columns`] after [`SchemaSource::load`] to resolve it elsewhere.
///
/// Nothing is required when `Enabled` is false, but what is present is still checked.
pub fn validate(
    conversion: &DataFormatConversionConfiguration,
    schema: Option<&SchemaSource>,
) -> Vec<(String, String)> {
    load_and_validate(conversion, schema).1
}

/// [`validate`], which also returns the columns it loaded (`None` when there is no schema or
/// its file cannot be read), so that a caller reads a schema file once.
pub fn load_and_validate(
    conversion: &DataFormatConversionConfiguration,
    schema: Option<&SchemaSource>,
) -> (Option<Vec<Column>>, Vec<(String, String)>) {
    match schema.map(|s| s.load(None)) {
        Some(Err(e)) => {
            let mut issues = validate_loaded(conversion, None);
            issues.retain(|(path, _)| path != SCHEMA_PATH);
            issues.push((format!("{SCHEMA_PATH}.file"), e.to_string()));
            (None, issues)
        }
        Some(Ok(columns)) => {
            let issues = validate_loaded(conversion, Some(&columns));
            (Some(columns), issues)
        }
        None => (None, validate_loaded(conversion, None)),
    }
}

/// [`validate`] for a column list that is already loaded.
pub fn validate_loaded(
    conversion: &DataFormatConversionConfiguration,
    columns: Option<&[Column]>,
) -> Vec<(String, String)> {
    let mut issues = Vec::new();
    let enabled = conversion.is_enabled();
    let mut push = |path: &str, message: String| issues.push((path.to_string(), message));

    const DESER: &str = "InputFormatConfiguration.Deserializer";
    let mut deserializer = None;
    match conversion.input_format_configuration.as_ref().map(|i| &i.deserializer) {
        None if enabled => push(
            "InputFormatConfiguration",
            "required when conversion is enabled: set Deserializer to OpenXJsonSerDe or \
             HiveJsonSerDe"
                .into(),
        ),
        Some(None) if enabled => {
            push(DESER, "required: set OpenXJsonSerDe or HiveJsonSerDe".into());
        }
        Some(Some(d)) => match (&d.open_x_json_ser_de, &d.hive_json_ser_de) {
            (Some(_), Some(_)) => {
                push(DESER, "set only one of OpenXJsonSerDe and HiveJsonSerDe, not both".into())
            }
            (None, None) => push(DESER, "set OpenXJsonSerDe or HiveJsonSerDe".into()),
            (Some(openx), None) => deserializer = Some(DeserializerKind::OpenX(openx)),
            (None, Some(hive)) => {
                deserializer = Some(DeserializerKind::Hive(hive));
                for (i, format) in hive.timestamp_formats.iter().flatten().enumerate() {
                    if let Err(e) = HiveTimestampFormat::compile(format) {
                        push(&format!("{DESER}.HiveJsonSerDe.TimestampFormats[{i}]"), e);
                    }
                }
            }
        },
        _ => {}
    }

    const SER: &str = "OutputFormatConfiguration.Serializer";
    match conversion.output_format_configuration.as_ref().map(|o| &o.serializer) {
        None if enabled => push(
            "OutputFormatConfiguration",
            "required when conversion is enabled: set Serializer to ParquetSerDe".into(),
        ),
        Some(None) if enabled => push(SER, "required: set ParquetSerDe".into()),
        Some(Some(s)) => {
            if s.orc_ser_de.is_some() {
                push(
                    &format!("{SER}.OrcSerDe"),
                    "ORC output is not supported; use ParquetSerDe".into(),
                );
            } else if s.parquet_ser_de.is_none() {
                push(SER, "set ParquetSerDe".into());
            }
            if let Some(p) = &s.parquet_ser_de {
                let path = format!("{SER}.ParquetSerDe");
                if p.block_size_bytes() < MIN_BLOCK_SIZE_BYTES {
                    push(
                        &format!("{path}.BlockSizeBytes"),
                        format!(
                            "must be at least {MIN_BLOCK_SIZE_BYTES} (64 MiB), got {}",
                            p.block_size_bytes()
                        ),
                    );
                }
                if p.page_size_bytes() < MIN_PAGE_SIZE_BYTES {
                    push(
                        &format!("{path}.PageSizeBytes"),
                        format!(
                            "must be at least {MIN_PAGE_SIZE_BYTES} (64 KiB), got {}",
                            p.page_size_bytes()
                        ),
                    );
                } else if p.page_size_bytes() > p.block_size_bytes() {
                    push(
                        &format!("{path}.PageSizeBytes"),
                        format!(
                            "must not exceed BlockSizeBytes ({}), got {}",
                            p.block_size_bytes(),
                            p.page_size_bytes()
                        ),
                    );
                }
            }
        }
        _ => {}
    }

    match columns {
        None if enabled => push(
            SCHEMA_PATH,
            "required when conversion is enabled: list the table's columns under \
             `columns` ({name, type}) or point `file` at a YAML/JSON file holding them"
                .into(),
        ),
        None => {}
        Some(columns) => {
            for (path, message) in validate_columns(columns, deserializer) {
                push(&format!("{SCHEMA_PATH}.{path}"), message);
            }
            if let Some(DeserializerKind::OpenX(openx)) = deserializer {
                if let Some(mappings) = &openx.column_to_json_key_mappings {
                    check_mappings(mappings, columns, &mut push);
                }
            }
        }
    }
    issues
}

fn check_mappings(
    mappings: &BTreeMap<String, String>,
    columns: &[Column],
    push: &mut impl FnMut(&str, String),
) {
    let path = "InputFormatConfiguration.Deserializer.OpenXJsonSerDe.ColumnToJsonKeyMappings";
    for (column, key) in mappings {
        if !columns.iter().any(|c| c.name.eq_ignore_ascii_case(column)) {
            push(
                &format!("{path}.{column}"),
                format!(
                    "`{column}` is not a column of hydrant.schema; map a column name to a JSON key"
                ),
            );
        }
        if key.is_empty() {
            push(&format!("{path}.{column}"), "the JSON key must not be empty".into());
        }
    }
}

/// Checks a column list for a deserializer; paths are relative to the schema block
/// (`columns[2].type`). Empty means the encoder will accept it.
pub fn validate_columns(
    columns: &[Column],
    deserializer: Option<DeserializerKind<'_>>,
) -> Vec<(String, String)> {
    let mut issues = Vec::new();
    if columns.is_empty() {
        issues.push(("columns".to_string(), "list at least one column".to_string()));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, column) in columns.iter().enumerate() {
        let path = format!("columns[{i}]");
        if column.name.trim().is_empty() {
            issues.push((format!("{path}.name"), "must not be empty".into()));
        }
        if let Some(first) = seen.insert(column.name.to_lowercase(), i) {
            issues.push((
                format!("{path}.name"),
                format!(
                    "`{}` repeats columns[{first}] (column names are case-insensitive in \
                     Glue and Athena)",
                    column.name
                ),
            ));
        }
        let ty = match HiveType::parse(&column.r#type) {
            Ok(ty) => ty,
            Err(e) => {
                issues.push((
                    format!("{path}.type"),
                    format!("cannot parse Hive type {:?}: {e}", column.r#type),
                ));
                continue;
            }
        };
        match deserializer {
            Some(DeserializerKind::Hive(_)) => {
                let mut names = vec![column.name.clone()];
                nested_field_names(&ty, &mut names);
                if let Some(bad) = names.iter().find(|n| n.contains('.')) {
                    issues.push((
                        format!("{path}.name"),
                        format!(
                            "`{bad}` contains a dot, which HiveJsonSerDe does not accept; \
                             rename it, or use OpenXJsonSerDe with \
                             ConvertDotsInJsonKeysToUnderscores"
                        ),
                    ));
                }
            }
            Some(DeserializerKind::OpenX(openx))
                if openx.convert_dots() && column.name.contains('.') =>
            {
                issues.push((
                    format!("{path}.name"),
                    format!(
                        "`{}` contains a dot but ConvertDotsInJsonKeysToUnderscores turns dots \
                         in JSON keys into underscores, so no key can match it; name the \
                         column `{}`",
                        column.name,
                        column.name.replace('.', "_")
                    ),
                ));
            }
            _ => {}
        }
    }
    issues
}

fn nested_field_names(ty: &HiveType, out: &mut Vec<String>) {
    match ty {
        HiveType::Array(t) => nested_field_names(t, out),
        HiveType::Map(k, v) => {
            nested_field_names(k, out);
            nested_field_names(v, out);
        }
        HiveType::Struct(fields) => {
            for (name, t) in fields {
                out.push(name.clone());
                nested_field_names(t, out);
            }
        }
        _ => {}
    }
}
