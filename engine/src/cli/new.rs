//! `lathe templates` and `lathe new`.

use crate::params::ParamKind;
use crate::project::Project;
use crate::template::Template;
use crate::templates;
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct TemplatesArgs {
    /// Show the parameters (with defaults and help) of one template.
    #[arg(long, value_name = "TEMPLATE")]
    pub params: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn templates(args: TemplatesArgs) -> Result<ExitCode> {
    if let Some(id) = &args.params {
        let template = Template::get(id)?;
        let task = templates::by_id(&template.task)?;
        let defaults = template.param_layer()?;
        let mut specs = task.param_specs();
        for s in &mut specs {
            if let Some(v) = defaults.get(&s.key) {
                s.default = v.clone();
            }
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&specs)?);
            return Ok(ExitCode::SUCCESS);
        }
        let mut group = String::new();
        for s in specs {
            if s.group != group {
                println!("\n{}:", s.group);
                group = s.group.clone();
            }
            let range = match &s.kind {
                ParamKind::Int { min, max } => format!("{min}..={max}"),
                ParamKind::Float { min, max } => format!("{min} to {max}"),
                ParamKind::Choice { options } => options.join(" | "),
                ParamKind::Bool => "true | false".into(),
                ParamKind::Text => "text".into(),
            };
            println!(
                "  {:<26} = {:<14} {}  [{range}]",
                s.key,
                s.default.display(),
                s.help
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let all = Template::all();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for t in all {
            println!(
                "{:<20} {} — {}\n{:<20} data: {}",
                t.id, t.title, t.blurb, "", t.data_layout
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct NewArgs {
    /// Folder for the project (created if missing).
    pub dir: PathBuf,
    /// Template id (see `lathe templates`).
    #[arg(long)]
    pub template: String,
    /// Training data path to write into the project (default: data/train).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Test data path to write into the project.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// The column to predict, for table and text templates (written as `target` in [params]).
    #[arg(long, value_name = "COL")]
    pub target: Option<String>,
}

pub fn new(args: NewArgs) -> Result<ExitCode> {
    let template = Template::get(&args.template)?;
    let file = args.dir.join("project.toml");
    if file.exists() {
        bail!(
            "{} already exists; Lathe never overwrites a project (pick another folder)",
            file.display()
        );
    }
    std::fs::create_dir_all(&args.dir)?;
    let abs_dir = std::path::absolute(&args.dir)?;
    let data = match &args.data {
        Some(d) => std::path::absolute(d)?,
        None => abs_dir.join("data/train"),
    };
    let mut project = Project::new(&template.id, data);
    project.name = abs_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(t) = &args.test {
        project.data.test = Some(std::path::absolute(t)?);
    }
    project.params = template.params.clone();
    if let Some(t) = &args.target {
        if !templates::by_id(&template.task)?
            .param_specs()
            .iter()
            .any(|s| s.key == "target")
        {
            bail!(
                "template {} has no target column to choose; drop --target",
                template.id
            );
        }
        project
            .params
            .insert("target".into(), toml::Value::String(t.clone()));
    }
    project.save(&file)?;
    eprintln!("Created {} ({})", file.display(), template.title);
    eprintln!("Data: {}", template.data_layout);
    eprintln!(
        "Next: put your data in place, then run `lathe check {0}` and `lathe train {0}`",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}
